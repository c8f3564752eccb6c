# census agent: one static (musl) binary in an empty image. Built by docker/build.sh.
FROM scratch
COPY census /census
EXPOSE 8500 8600/udp 8600/tcp 8300
ENTRYPOINT ["/census"]
CMD ["agent", "-dev", "-client=0.0.0.0"]
