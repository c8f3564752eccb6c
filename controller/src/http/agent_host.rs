//! `GET /v1/agent/host`: the machine the agent runs on, in the shape Consul's gopsutil answer has
//! (`Memory`, `CPU`, `Host`, `Disk` of `/`, `CollectionTime` in nanoseconds, `Errors`), read
//! from `/proc` and `statvfs`. A part that cannot be read is `null`, with its error listed.

use std::collections::BTreeMap;

use axum::response::Response;
use serde_json::{Value, json};

use super::error::ApiResult;
use super::query::{Params, json_response};

/// `/proc/meminfo` in bytes, keyed as the file names them.
fn meminfo() -> Result<BTreeMap<String, u64>, String> {
    let text = std::fs::read_to_string("/proc/meminfo").map_err(|e| format!("/proc/meminfo: {e}"))?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let kb: u64 = rest.split_whitespace().next()?.parse().ok()?;
            Some((name.to_string(), kb * 1024))
        })
        .collect())
}

fn memory() -> Result<Value, String> {
    let m = meminfo()?;
    let get = |k: &str| m.get(k).copied().unwrap_or(0);
    let (total, available) = (get("MemTotal"), get("MemAvailable"));
    let used = total.saturating_sub(get("MemFree") + get("Buffers") + get("Cached") + get("SReclaimable"));
    Ok(json!({
        "total": total, "available": available, "used": used,
        "usedPercent": if total == 0 { 0.0 } else { used as f64 * 100.0 / total as f64 },
        "free": get("MemFree"), "active": get("Active"), "inactive": get("Inactive"),
        "buffers": get("Buffers"), "cached": get("Cached"), "shared": get("Shmem"),
        "slab": get("Slab"), "sreclaimable": get("SReclaimable"), "sunreclaim": get("SUnreclaim"),
        "swapTotal": get("SwapTotal"), "swapFree": get("SwapFree"), "dirty": get("Dirty"),
    }))
}

fn cpus() -> Result<Value, String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").map_err(|e| format!("/proc/cpuinfo: {e}"))?;
    let cpus: Vec<Value> = text
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let field = |name: &str| {
                block.lines().find_map(|l| l.split_once(':').filter(|(k, _)| k.trim() == name).map(|(_, v)| v.trim().to_string())).unwrap_or_default()
            };
            json!({
                "cpu": field("processor").parse::<u64>().unwrap_or(0), "vendorId": field("vendor_id"),
                "family": field("cpu family"), "model": field("model"), "modelName": field("model name"),
                "cores": field("cpu cores").parse::<u64>().unwrap_or(1), "mhz": field("cpu MHz").parse::<f64>().unwrap_or(0.0),
                "cacheSize": field("cache size").split_whitespace().next().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0),
                "flags": field("flags").split_whitespace().collect::<Vec<_>>(), "microcode": field("microcode"),
            })
        })
        .collect();
    Ok(Value::Array(cpus))
}

fn os_release() -> BTreeMap<String, String> {
    std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string())))
        .collect()
}

fn host() -> Result<Value, String> {
    let read = |path: &str| {
        std::fs::read_to_string(path).map(|s| s.trim().to_string()).map_err(|e| format!("{path}: {e}"))
    };
    let uptime: f64 =
        read("/proc/uptime")?.split_whitespace().next().and_then(|u| u.parse().ok()).unwrap_or(0.0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let procs = std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().bytes().all(|b| b.is_ascii_digit()))
                .count()
        })
        .unwrap_or(0);
    let os = os_release();
    Ok(json!({
        "hostname": read("/proc/sys/kernel/hostname")?,
        "uptime": uptime as u64,
        "bootTime": now.saturating_sub(uptime as u64),
        "procs": procs,
        "os": std::env::consts::OS,
        "platform": os.get("ID").cloned().unwrap_or_default(),
        "platformFamily": os.get("ID_LIKE").or(os.get("ID")).cloned().unwrap_or_default(),
        "platformVersion": os.get("VERSION_ID").cloned().unwrap_or_default(),
        "kernelVersion": read("/proc/sys/kernel/osrelease")?,
        "kernelArch": std::env::consts::ARCH,
        "hostId": read("/etc/machine-id").unwrap_or_default(),
    }))
}

fn disk() -> Result<Value, String> {
    let stat = nix::sys::statvfs::statvfs("/").map_err(|e| format!("statvfs /: {e}"))?;
    let block = stat.fragment_size() as u64;
    let total = stat.blocks() as u64 * block;
    let free = stat.blocks_available() as u64 * block;
    let used = total.saturating_sub(stat.blocks_free() as u64 * block);
    let (inodes, inodes_free) = (stat.files() as u64, stat.files_free() as u64);
    let percent = |part: u64, whole: u64| if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 };
    Ok(json!({
        "path": "/", "total": total, "free": free, "used": used, "usedPercent": percent(used, used + free),
        "inodesTotal": inodes, "inodesUsed": inodes - inodes_free, "inodesFree": inodes_free,
        "inodesUsedPercent": percent(inodes - inodes_free, inodes),
    }))
}

pub async fn host_info(params: Params) -> ApiResult<Response> {
    let mut errors = Vec::new();
    let mut part = |r: Result<Value, String>| {
        r.unwrap_or_else(|e| {
            errors.push(json!({"error": e}));
            Value::Null
        })
    };
    let (memory, cpu, host, disk) = (part(memory()), part(cpus()), part(host()), part(disk()));
    let collected =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let body = json!({
        "Memory": memory, "CPU": cpu, "Host": host, "Disk": disk,
        "CollectionTime": collected,
        "Errors": if errors.is_empty() { Value::Null } else { Value::Array(errors) },
    });
    json_response(&body, params.pretty)
}
