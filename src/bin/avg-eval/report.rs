//! The run's tables: Markdown on stdout and beside the JSON, each row also against the
//! dense baseline of its queries.

use crate::score::{paired_delta, Delta, Recall};
use std::path::Path;

/// Writes `LABEL.md` and `LABEL.json` into `out` (and the Markdown to stdout); `head`
/// holds the run's settings, `extra` what a kind of run adds.
pub(crate) fn write(
    out: &Path,
    label: &str,
    setting: &str,
    head: serde_json::Value,
    rows: &[(String, Recall)],
    extra: serde_json::Map<String, serde_json::Value>,
) {
    let is_dense = |n: &str| n.starts_with("dense baseline");
    let deltas: Vec<Option<Delta>> = rows
        .iter()
        .map(|(name, r)| {
            if is_dense(name) {
                return None;
            }
            rows.iter().filter(|(n, _)| is_dense(n)).find_map(|(_, base)| paired_delta(r, base))
        })
        .collect();
    let interval = |d: &Option<Delta>, i: usize| {
        d.as_ref().map_or(String::new(), |d| format!("{:+.1} [{:+.1}, {:+.1}]", d.d[i], d.lo[i], d.hi[i]))
    };
    let mut md = format!(
        "Text proxy, {setting}\n\n| method | R@1 | R@5 | R@10 | candidates | queries/s | R@1 - dense [95%] | R@10 - dense [95%] |\n|---|---|---|---|---|---|---|---|\n"
    );
    for ((name, r), d) in rows.iter().zip(&deltas) {
        md += &format!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} |\n",
            r.r[0],
            r.r[1],
            r.r[2],
            r.candidates,
            r.qps,
            interval(d, 0),
            interval(d, 2)
        );
    }
    md += "\n(Differences from the dense baseline of the same queries, in points, with 95% intervals of a paired \
           bootstrap over the test images.)\n";
    for (k, v) in &extra {
        md += &format!("\n{k}: {v}\n");
    }
    println!("{md}");
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .zip(&deltas)
        .map(|((n, r), d)| {
            let mut row = serde_json::json!({"method": n, "r1": r.r[0], "r5": r.r[1], "r10": r.r[2], "candidates": r.candidates, "qps": r.qps});
            if let Some(d) = d {
                row["minus_dense"] = serde_json::json!({
                    "r1": d.d[0], "r5": d.d[1], "r10": d.d[2],
                    "r1_95": [d.lo[0], d.hi[0]], "r5_95": [d.lo[1], d.hi[1]], "r10_95": [d.lo[2], d.hi[2]],
                });
            }
            row
        })
        .collect();
    let mut json = head;
    let obj = json.as_object_mut().expect("an object");
    obj.insert("rows".into(), rows.into());
    obj.extend(extra);
    std::fs::write(out.join(format!("{label}.json")), serde_json::to_vec_pretty(&json).unwrap()).unwrap();
    std::fs::write(out.join(format!("{label}.md")), md).unwrap();
}
