# census agent: one static (musl) binary in an empty image. Built by docker/build.sh.
#
# As in Consul's image: `docker run census agent -server ...` needs no -data-dir (the agent uses
# $CENSUS_DATA_DIR when no flag or config file names one), and CONSUL_LOCAL_CONFIG (or
# CENSUS_LOCAL_CONFIG) holds a JSON agent config, read by the binary itself (no shell here).
FROM scratch
COPY census /census
ENV CENSUS_DATA_DIR=/data
EXPOSE 8500 8600/udp 8600/tcp 8300
ENTRYPOINT ["/census"]
CMD ["agent", "-dev", "-client=0.0.0.0"]
