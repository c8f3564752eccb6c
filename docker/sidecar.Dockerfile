# census-sidecar (register, render, docker-proxy): one static (musl) binary. Built by docker/build.sh.
FROM scratch
COPY census-sidecar /census-sidecar
ENTRYPOINT ["/census-sidecar"]
