# The demo backend: answers with its hostname; its HEALTHCHECK is /health. Built by docker/build.sh.
FROM scratch
COPY census-demo-web /web
EXPOSE 80
HEALTHCHECK --interval=1s --timeout=2s --retries=1 CMD ["/web", "-check"]
ENTRYPOINT ["/web"]
