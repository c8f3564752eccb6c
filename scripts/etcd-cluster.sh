# Sourced by the etcd benchmark scripts: a fresh 3-member etcd 3.4 cluster (Debian's etcd-server)
# on loopback, heartbeat 100 ms, election 1,000 ms, data under $work (same disk as census' data
# dirs). Sets: cluster, eps (client endpoints), leader, pids; defines member_args I.
command -v etcd >/dev/null || { echo "apt-get install etcd-server etcd-client golang-go golang-etcd-server-dev"; exit 1; }
[ -x target/etcd-load ] || GO111MODULE=off GOPATH=/usr/share/gocode go build -o target/etcd-load ./bench/etcd-load
cluster=m1=http://127.0.0.1:12380,m2=http://127.0.0.1:22380,m3=http://127.0.0.1:32380
member_args() { # i
  echo --name m$1 --data-dir "$work/m$1" --heartbeat-interval 100 --election-timeout 1000 \
    --listen-client-urls http://127.0.0.1:${1}2379 --advertise-client-urls http://127.0.0.1:${1}2379 \
    --listen-peer-urls http://127.0.0.1:${1}2380 --initial-advertise-peer-urls http://127.0.0.1:${1}2380 \
    --initial-cluster $cluster --initial-cluster-token bench --logger zap --log-level warn
}
for i in 1 2 3; do
  # shellcheck disable=SC2046
  etcd $(member_args $i) --initial-cluster-state new >"$work/m$i.log" 2>&1 &
done
eps=127.0.0.1:12379,127.0.0.1:22379,127.0.0.1:32379
for _ in $(seq 100); do ETCDCTL_API=3 etcdctl --endpoints=$eps endpoint health >/dev/null 2>&1 && break; sleep 0.1; done
leader=$(ETCDCTL_API=3 etcdctl --endpoints=$eps endpoint status -w simple | awk -F', ' '$5=="true"{print $1}')
pids=$(pgrep -f "etcd --name m" | tr '\n' ' ')
