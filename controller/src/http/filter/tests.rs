//! Table-driven tests: every operator, its negation, selectors into lists and maps, precedence,
//! and malformed input.

use serde_json::{Value, json};

use super::{Filter, FilterError};

fn entry() -> Value {
    json!({
        "Node": {"Node": "node1", "Address": "10.0.0.1", "Meta": {"rack": "r1", "env": "prod"}},
        "Service": {
            "ID": "web-1", "Service": "web", "Tags": ["v2", "primary"], "Port": 8080,
            "Meta": {"version": "2.1.0", "owner": ""}, "EnableTagOverride": false,
            "Weights": {"Passing": 10, "Warning": 1}
        },
        "Checks": [
            {"CheckID": "serfHealth", "Status": "passing", "Output": "Agent alive"},
            {"CheckID": "service:web-1", "Status": "critical", "Output": "HTTP GET: 503"}
        ],
        "Empty": [],
        "Nothing": null
    })
}

#[test]
fn every_operator_matches_as_consul_documents() {
    let cases: &[(&str, bool)] = &[
        // == and != on strings, numbers, booleans, nested objects and map keys
        (r#"Service.Service == "web""#, true),
        (r#"Service.Service == "api""#, false),
        (r#"Service.Service != "api""#, true),
        (r#"Service.Service != "web""#, false),
        ("Service.Port == 8080", true),
        ("Service.Port == 8080.0", true),
        ("Service.Port != 80", true),
        ("Service.EnableTagOverride == false", true),
        ("Service.EnableTagOverride == true", false),
        ("Service.Weights.Passing == 10", true),
        (r#"Node.Meta.rack == "r1""#, true),
        (r#"Node.Meta["rack"] == "r1""#, true),
        (r#"Node.Meta["rack"] != "r2""#, true),
        (r#"Service.Meta["missing"] != "x""#, true),
        (r#"Service.Meta["missing"] == "x""#, false),
        // field names are matched ignoring case when the exact spelling is absent
        (r#"service.service == "web""#, true),
        // bare words as values
        ("Service.Service == web", true),
        // in / not in / contains / not contains on lists, maps and strings
        (r#""v2" in Service.Tags"#, true),
        (r#""v3" in Service.Tags"#, false),
        (r#""v3" not in Service.Tags"#, true),
        (r#""v2" not in Service.Tags"#, false),
        (r#"Service.Tags contains "primary""#, true),
        (r#"Service.Tags not contains "primary""#, false),
        (r#""env" in Node.Meta"#, true),
        (r#""zone" in Node.Meta"#, false),
        (r#""zone" not in Node.Meta"#, true),
        (r#"Node.Address contains "10.0""#, true),
        (r#""0.0.1" in Node.Address"#, true),
        (r#"Checks.Output contains "503""#, true),
        // through a list: any element
        (r#"Checks.Status == "critical""#, true),
        (r#"Checks.Status == "warning""#, false),
        (r#"Checks.Status != "warning""#, true),
        (r#""critical" in Checks.Status"#, true),
        // is empty / is not empty
        ("Empty is empty", true),
        ("Empty is not empty", false),
        ("Nothing is empty", true),
        ("Service.Tags is empty", false),
        ("Service.Tags is not empty", true),
        (r#"Service.Meta["owner"] is empty"#, true),
        (r#"Service.Meta["absent"] is empty"#, true),
        ("Node.Meta is not empty", true),
        // matches / not matches
        (r#"Service.Meta.version matches "^2\\.""#, true),
        (r#"Service.Meta.version matches `^2\.1`"#, true),
        (r#"Service.Meta.version matches "^3""#, false),
        (r#"Service.Meta.version not matches "^3""#, true),
        (r#"Service.Tags matches "^v[0-9]$""#, true),
        // and / or / not / parentheses and precedence
        (r#"Service.Service == "web" and "v2" in Service.Tags"#, true),
        (r#"Service.Service == "web" and "v9" in Service.Tags"#, false),
        (r#"Service.Service == "api" or "v2" in Service.Tags"#, true),
        (r#"not Service.Service == "api""#, true),
        (r#"not (Service.Service == "web")"#, false),
        // and binds tighter than or: false and false or true = true
        (r#"Service.Port == 1 and Service.Port == 2 or Service.Port == 8080"#, true),
        // parentheses override: false and (false or true) = false
        (r#"Service.Port == 1 and (Service.Port == 2 or Service.Port == 8080)"#, false),
        (r#"not Service.Port == 1 and not Service.Port == 2"#, true),
        (r#"((Service.Service == "web"))"#, true),
        // strings with escapes
        (r#"Service.Service == "w\"eb""#, false),
    ];
    let item = entry();
    for (expr, want) in cases {
        let filter = Filter::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert_eq!(filter.matches(&item), *want, "{expr}");
    }
}

#[test]
fn malformed_expressions_are_refused_with_the_position() {
    let cases: &[(&str, usize)] = &[
        ("", 0),
        ("Service.Service ==", 18),
        ("Service.Service = \"web\"", 16),
        ("Service.Service == \"web", 19),
        ("(Service.Port == 1", 18),
        ("Service.Port == 1)", 17),
        ("Service.Port == 1 and", 21),
        ("Service.Port 1", 13),
        ("Service.Tags is full", 16),
        ("Service. == 1", 9),
        ("Node.Meta[rack] == 1", 10),
        ("Service.Meta.version matches \"(\"", 29),
        ("\"v2\" Service.Tags", 5),
        ("Service.Port == 1 Service.Port == 2", 18),
        ("Service.Port == 1 & Service.Port == 2", 18),
        ("and == 1", 0),
    ];
    for (expr, at) in cases {
        match Filter::parse(expr) {
            Err(FilterError::Syntax { at: got, message }) => {
                assert_eq!(got, *at, "{expr:?}: {message}");
            }
            other => panic!("{expr:?} should be refused, got {other:?}"),
        }
    }
}

#[test]
fn unknown_first_field_is_refused_and_listings_are_filtered() {
    let filter = Filter::parse(r#"Servce.Service == "web""#).expect("parse");
    let mut listing = json!([entry()]);
    assert_eq!(filter.apply(&mut listing), Err(FilterError::UnknownSelector("Servce.Service".into())));

    // arrays keep matching elements, in order
    let filter = Filter::parse(r#"Name != "b""#).expect("parse");
    let mut listing = json!([{"Name": "a"}, {"Name": "b"}, {"Name": "c"}]);
    filter.apply(&mut listing).expect("apply");
    assert_eq!(listing, json!([{"Name": "a"}, {"Name": "c"}]));

    // a map of objects (agent services) keeps its keys
    let filter = Filter::parse(r#""v2" in Tags"#).expect("parse");
    let mut listing = json!({"a": {"Tags": ["v2"]}, "b": {"Tags": []}});
    filter.apply(&mut listing).expect("apply");
    assert_eq!(listing, json!({"a": {"Tags": ["v2"]}}));

    // a node's answer filters its services
    let filter = Filter::parse("Port == 80").expect("parse");
    let mut listing = json!({"Node": {"Node": "n"}, "Services": {"x": {"Port": 80}, "y": {"Port": 81}}});
    filter.apply(&mut listing).expect("apply");
    assert_eq!(listing, json!({"Node": {"Node": "n"}, "Services": {"x": {"Port": 80}}}));

    // an empty listing has nothing to check selectors against and stays empty
    let mut listing = json!([]);
    filter.apply(&mut listing).expect("apply");
    assert_eq!(listing, json!([]));
}
