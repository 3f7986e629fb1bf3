//! `onnxi test PATH… --html FILE`: the report holds the run's closing line
//! and, for every op the run counts, a section with its charts.

use std::process::Command;

#[test]
fn html_report_has_a_chart_per_op_and_the_closing_line() {
    let dir = tempfile::tempdir().unwrap();
    let html_path = dir.path().join("report.html");
    let output = Command::new(env!("CARGO_BIN_EXE_onnxi"))
        .args(["test", "fixtures/", "--by-op", "--html"])
        .arg(&html_path)
        .output()
        .expect("the onnxi binary runs");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(output.status.success(), "{stdout}");
    let closing = stdout.lines().last().unwrap();
    assert!(closing.ends_with(" failed") && closing.contains(" passed, "), "{closing}");
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(
        html.contains(&format!("<p class=\"summary\" id=\"summary\">{closing}</p>")),
        "closing line {closing:?} missing"
    );
    // The ops of the --by-op table, each with a section holding its charts.
    let ops: Vec<(&str, usize)> = stdout
        .lines()
        .filter(|line| line.starts_with("| ") && !line.starts_with("| op |"))
        .map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            (cells[0], cells[1].parse().unwrap())
        })
        .collect();
    assert!(ops.len() > 50, "{} ops", ops.len());
    let sections: Vec<&str> = html.split("<section class=\"op\" id=\"op-").skip(1).collect();
    assert_eq!(sections.len(), ops.len());
    for (op, passed) in &ops {
        let section = sections
            .iter()
            .find(|section| section.starts_with(&format!("{op}\"")))
            .unwrap_or_else(|| panic!("no section for {op}"));
        let section = &section[..section.find("</section>").unwrap()];
        assert!(section.matches("<svg").count() >= 3, "{op}: charts missing");
        assert!(section.contains(&format!("{passed} of ")), "{op}: pass count {passed} missing");
    }
    // The pass counts of the matrix add up like the closing line's (a
    // case counts once per op, so compare per op through the sections).
    let passed: usize = closing.split(' ').next().unwrap().parse().unwrap();
    assert!(html.contains(&format!("{passed} passed, ")));
    // Self-contained: nothing to fetch, no script.
    assert!(!html.contains("<script"));
    for attribute in ["src=", "href=\"http", "url("] {
        assert!(!html.contains(attribute), "{attribute} in the report");
    }
}
