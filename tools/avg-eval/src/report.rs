//! The run's tables: Markdown on stdout and beside the JSON, each row also against the
//! dense baseline of its queries.

use crate::score::{paired_delta, Delta, Recall};
use std::path::Path;

/// The name of the dense scan's row, and of the dense scan given attached words.
pub(crate) const DENSE: &str = "dense baseline";
pub(crate) const DENSE_WORDS: &str = "dense + words";

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
    // Rows are measured against the dense scan and, where the run has one, against the
    // dense scan given the images' attached words.
    let against = |base: &str| -> Vec<Option<Delta>> {
        rows.iter()
            .map(|(name, r)| {
                if name.starts_with(base) {
                    return None;
                }
                rows.iter().filter(|(n, _)| n.starts_with(base)).find_map(|(_, b)| paired_delta(r, b))
            })
            .collect()
    };
    let deltas = against(DENSE);
    let words = against(DENSE_WORDS);
    let has_words = words.iter().any(Option::is_some);
    let interval = |d: &Option<Delta>, i: usize| {
        d.as_ref().map_or(String::new(), |d| format!("{:+.1} [{:+.1}, {:+.1}]", d.d[i], d.lo[i], d.hi[i]))
    };
    let words_head = if has_words { " R@1 - dense + words [95%] |" } else { "" };
    let mut md = format!(
        "Text proxy, {setting}\n\n| method | R@1 | R@5 | R@10 | candidates | queries/s | R@1 - dense [95%] | R@10 - dense [95%] |{words_head}\n|---|---|---|---|---|---|---|---|{}\n",
        if has_words { "---|" } else { "" }
    );
    for (((name, r), d), w) in rows.iter().zip(&deltas).zip(&words) {
        md += &format!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} |{}\n",
            r.r[0],
            r.r[1],
            r.r[2],
            r.candidates,
            r.qps,
            interval(d, 0),
            interval(d, 2),
            if has_words { format!(" {} |", interval(w, 0)) } else { String::new() }
        );
    }
    md += "\n(Differences from the dense baseline of the same queries, in points, with 95% intervals of a paired \
           bootstrap over the test images.)\n";
    for (k, v) in &extra {
        md += &format!("\n{k}: {v}\n");
    }
    println!("{md}");
    let delta_json = |d: &Delta| {
        serde_json::json!({
            "r1": d.d[0], "r5": d.d[1], "r10": d.d[2],
            "r1_95": [d.lo[0], d.hi[0]], "r5_95": [d.lo[1], d.hi[1]], "r10_95": [d.lo[2], d.hi[2]],
        })
    };
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .zip(deltas.iter().zip(&words))
        .map(|((n, r), (d, w))| {
            let mut row = serde_json::json!({"method": n, "r1": r.r[0], "r5": r.r[1], "r10": r.r[2], "candidates": r.candidates, "qps": r.qps});
            if let Some(d) = d {
                row["minus_dense"] = delta_json(d);
            }
            if let Some(w) = w {
                row["minus_dense_words"] = delta_json(w);
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
