"""Drives a census cluster with py-consul, a third-party Consul client from PyPI.

Usage: python3 py_consul_test.py WRITE_HOST:PORT READ_HOST:PORT
Writes go to the first server, reads to the second (a follower or the leader).
Exits non-zero with the failing assertion on any mismatch.
"""

import sys

import consul


def client(addr):
    host, port = addr.rsplit(":", 1)
    return consul.Consul(host=host, port=int(port))


def main():
    w, r = client(sys.argv[1]), client(sys.argv[2])

    # Registration with a TTL check, then the check passes.
    w.agent.service.register("pyweb", service_id="pyweb-1", port=8080, tags=["v1", "blue"],
                             meta={"team": "core"}, check=consul.Check.ttl("30s"))
    assert "pyweb-1" in w.agent.services(), w.agent.services()
    w.agent.check.ttl_pass("service:pyweb-1", "ok")

    # Catalog and health, read on the other server (default consistency: the leader's view).
    index, services = r.catalog.services()
    assert int(index) > 0 and services.get("pyweb") is not None, services
    assert sorted(services["pyweb"]) == ["blue", "v1"], services
    _, rows = r.catalog.service("pyweb")
    assert len(rows) == 1 and rows[0]["ServicePort"] == 8080 and rows[0]["ServiceMeta"] == {"team": "core"}, rows
    _, rows = r.catalog.service("pyweb", tag="blue")
    assert len(rows) == 1, rows
    _, healthy = r.health.service("pyweb", passing=True)
    assert len(healthy) == 1 and healthy[0]["Service"]["ID"] == "pyweb-1", healthy
    w.agent.check.ttl_fail("service:pyweb-1", "down")
    _, healthy = r.health.service("pyweb", passing=True)
    assert healthy == [], healthy
    _, nodes = r.catalog.nodes()
    assert len(nodes) >= 1, nodes

    # KV: put/get, cas, flags, recurse, keys, delete.
    assert w.kv.put("py/a", "x", flags=7) is True
    index, item = r.kv.get("py/a", consistency="consistent")
    assert item["Value"] == b"x" and item["Flags"] == 7, item
    assert w.kv.put("py/a", "y", cas=0) is False, "cas=0 must not overwrite"
    assert w.kv.put("py/a", "y", cas=item["ModifyIndex"]) is True
    assert w.kv.put("py/sub/b", "z") is True
    _, items = r.kv.get("py/", recurse=True, consistency="consistent")
    assert [i["Key"] for i in items] == ["py/a", "py/sub/b"], items
    _, keys = r.kv.get("py/", keys=True, separator="/", consistency="consistent")
    assert keys == ["py/a", "py/sub/"], keys
    # A blocking read with no change returns after the wait with the same index.
    index2, item2 = r.kv.get("py/a", index=item["ModifyIndex"] + 1, wait="1s", consistency="consistent")
    assert item2["Value"] == b"y", item2
    assert w.kv.delete("py/", recurse=True) is True
    _, gone = r.kv.get("py/a", consistency="consistent")
    assert gone is None, gone

    # Status endpoints.
    assert r.status.leader(), "no leader"
    assert len(r.status.peers()) >= 1

    w.agent.service.deregister("pyweb-1")
    _, rows = r.catalog.service("pyweb", consistency="consistent")
    assert rows == [], rows
    print("py-consul: all checks passed")


if __name__ == "__main__":
    main()
