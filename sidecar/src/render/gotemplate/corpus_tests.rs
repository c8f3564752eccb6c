//! Go text/template semantics through census' Go template path: the corpus the engine was chosen
//! on (expected outputs are Go's), plus consul-template's functions against fixed catalog data.

use std::sync::Arc;

use serde_json::json;

use crate::render::deps::Dependency;
use crate::render::helpers::Shared;
use crate::render::template::{Language, TemplateSet};

/// Renders `text` as a Go template against `shared`; the output or the error text.
fn render(text: &str, shared: &Arc<Shared>) -> Result<String, String> {
    let set = TemplateSet::from_text_in(Language::Go, text, shared.clone()).map_err(|e| e.to_string())?;
    set.render().outputs.into_iter().next().unwrap_or_else(|| Err("no output".into()))
}

/// Go's semantics, with data from `keyOrDefault` / `parseJSON` (dot is nil in consul-template).
#[test]
fn go_text_template_corpus() {
    let shared = Arc::new(Shared::new(0));
    let data = r#"{{$d := `{"L":[1,2,3],"E":[],"M":{"b":2,"a":1,"c":3},"S":"str","T":true,"F":false,
        "Items":[{"Name":"x","Port":80},{"Name":"y","Port":81}]}` | parseJSON}}"#;
    let cases: &[(&str, &str)] = &[
        ("{{range $d.L}}{{.}},{{else}}none{{end}}", "1,2,3,"),
        ("{{range $d.E}}{{.}}{{else}}none{{end}}", "none"),
        ("{{range $i, $e := $d.L}}{{$i}}:{{$e}} {{end}}", "0:1 1:2 2:3 "),
        ("{{range $k, $v := $d.M}}{{$k}}={{$v}};{{end}}", "a=1;b=2;c=3;"),
        ("{{with $d.M.zz}}yes{{else}}no{{end}}|{{with $d.S}}{{.}}{{end}}", "no|str"),
        ("{{$x := 1}}{{if $d.T}}{{$x = 2}}{{end}}{{$x}}", "2"),
        ("{{$n := \"a\"}}{{range $d.L}}{{$n := .}}{{end}}{{$n}}", "a"),
        ("a  {{- \"b\" -}}  c\n{{- \"d\"}}", "abcd"),
        ("x {{- /* c */ -}} y", "xy"),
        ("{{define \"T\"}}[{{.}}]{{end}}{{template \"T\" \"v\"}}{{template \"T\" $d.S}}", "[v][str]"),
        ("{{block \"B\" $d.S}}<{{.}}>{{end}}", "<str>"),
        ("{{eq 2 1 2}} {{eq \"a\" \"b\"}} {{ne 1 2}}", "true false true"),
        ("{{lt 1 2}} {{le 2 2}} {{gt 1.5 2.5}} {{ge \"b\" \"a\"}}", "true true false true"),
        ("{{and 1 0 2}} {{or 0 \"\" \"x\"}} {{and 1 2}} {{not 0}} {{not $d.S}}", "0 x 2 true false"),
        ("{{and $d.F (index $d.L 10)}}", "false"),
        (
            "{{printf \"%s|%d|%q|%v|%5.2f|%-4s|%03d\" \"a\" 3 \"b\" $d.L 3.14159 \"z\" 7}}",
            "a|3|\"b\"|[1 2 3]| 3.14|z   |007",
        ),
        ("{{len $d.L}} {{len $d.M}} {{index $d.L 1}} {{index $d.M \"b\"}}", "3 3 2 2"),
        ("{{\"x\" | printf \"%s-%s\" \"y\"}} {{$d.L | len | printf \"n=%d\"}}", "y-x n=3"),
        ("{{(index $d.Items 0).Name}} {{$i := index $d.Items 1}}{{$i.Port}}", "x 81"),
        ("{{$d.M.zz}}", "<no value>"),
        ("{{if $d.F}}a{{else if $d.T}}b{{else}}c{{end}}", "b"),
        ("{{range $d.L}}{{if eq . 2}}{{continue}}{{end}}{{if eq . 3}}{{break}}{{end}}{{.}}{{end}}", "1"),
        ("{{range $d.Items}}{{$d.S}}-{{.Name}} {{end}}", "str-x str-y "),
        ("{{print \"a\" 1 2 \"b\"}} {{0x10}} {{'a'}}", "a1 2b 16 97"),
    ];
    for (template, want) in cases {
        let got = render(&format!("{data}{template}"), &shared);
        assert_eq!(got.as_deref(), Ok(*want), "{template}");
    }
    for refused in ["{{lt 1 1.5}}", "{{eq 1 \"a\"}}", "{{index $d.L 10}}"] {
        assert!(render(&format!("{data}{refused}"), &shared).is_err(), "{refused} must fail as in Go");
    }
}

#[test]
fn unknown_functions_and_failing_calls_name_file_line_and_column() {
    let shared = Arc::new(Shared::new(0));
    let err = render("a\nb {{ nosuch 1 }}\n", &shared).expect_err("unknown function");
    assert!(err.contains("line 2, column 6") && err.contains("\"nosuch\" not defined"), "{err}");
    let err = render("a\n{{if}}", &shared).expect_err("syntax");
    assert!(err.contains("line 2"), "{err}");
    let err = render("x\n\n  {{ 2 | parseInt }}", &shared).expect_err("not a string");
    assert!(err.contains("template inline line 3, column 10: parseInt"), "{err}");
    let err = render("{{ \"x\" | parseInt }}", &shared).expect_err("bad number");
    assert!(err.contains("line 1, column 10: parseInt"), "{err}");
}

/// consul-template's `key` on a key that does not exist holds the template back (nothing is
/// written) and says which key; `keyOrDefault` and `keyExists` render without it.
#[test]
fn a_missing_key_holds_the_template_back() {
    let shared = Arc::new(Shared::new(0));
    let gone = Dependency::Key("gone".into());
    shared.update(&gone, serde_json::Value::Null);
    let set =
        TemplateSet::from_text_in(Language::Go, "a={{ key \"gone\" }}", shared.clone()).expect("compile");
    let rendered = set.render();
    assert!(!rendered.ready(0) && rendered.waiting[0].contains(&gone), "{:?}", rendered.waiting);
    let set = TemplateSet::from_text_in(
        Language::Go,
        "{{ keyOrDefault \"gone\" \"d\" }} {{ keyExists \"gone\" }}",
        shared.clone(),
    )
    .expect("compile");
    let rendered = set.render();
    assert!(rendered.ready(0));
    assert_eq!(rendered.outputs[0].as_deref(), Ok("d false"));
    shared.update(&gone, serde_json::Value::String("here".into()));
    let set = TemplateSet::from_text_in(Language::Go, "a={{ key \"gone\" }}", shared).expect("compile");
    let rendered = set.render();
    assert!(rendered.ready(0));
    assert_eq!(rendered.outputs[0].as_deref(), Ok("a=here"));
}

fn instance(id: &str, address: &str, port: u16, status: &str, tags: &[&str]) -> serde_json::Value {
    json!({"ID": id, "Name": "web", "Tags": tags, "Address": address, "Port": port, "ServiceMeta": {"v": id},
           "Node": format!("node-{id}"), "Status": status})
}

#[test]
fn consul_template_functions_on_catalog_data() {
    let shared = Arc::new(Shared::new(0));
    let web = Dependency::Service { name: "web".into(), tag: None, dc: None };
    shared
        .update(&Dependency::Services, json!([{"Name": "db", "Tags": []}, {"Name": "web", "Tags": ["v1"]}]));
    shared.update(
        &web,
        json!([
            instance("a", "10.0.0.1", 80, "passing", &["v1"]),
            instance("b", "10.0.0.2", 80, "critical", &["v1", "canary"])
        ]),
    );
    let kv = json!([{"Key": "app/a", "Value": "1"}, {"Key": "app/sub/", "Value": ""}, {"Key": "app/sub/b", "Value": "2"}]);
    shared.update(&Dependency::Tree("app".into()), kv);
    shared.update(&Dependency::Key("app/a".into()), json!("1"));
    shared.update(&Dependency::Key("nope".into()), serde_json::Value::Null);
    shared.update(&Dependency::Datacenters, json!(["dc1"]));
    let proxy = Dependency::Connect { name: "web".into(), tag: None, dc: None };
    shared.update(&proxy, json!([instance("web-proxy", "10.0.0.1", 21000, "passing", &[])]));
    let cases: &[(&str, &str)] = &[
        ("{{range connect \"web\"}}{{.Address}}:{{.Port}}{{end}}", "10.0.0.1:21000"),
        ("{{range services}}{{.Name | sprig_upper | sprig_quote}} {{end}}", "\"DB\" \"WEB\" "),
        (
            "{{sprig_default \"none\" (keyOrDefault \"nope\" \"\")}} {{sprig_join \",\" (sprig_list 1 \"a\")}}",
            "none 1,a",
        ),
        ("{{$d := sprig_dict \"port\" 80}}{{sprig_get $d \"port\"}} {{sprig_keys $d}}", "80 [port]"),
        ("{{tree \"app\" | explode | toTOML}}", "a = \"1\"\n\n[sub]\n  b = \"2\""),
        ("{{range service \"web\"}}{{.Address}}:{{.Port}} {{end}}", "10.0.0.1:80 "),
        ("{{range service \"web|any\"}}{{.ID}}{{end}}", "ab"),
        ("{{range service \"web\" \"passing,critical\"}}{{.ID}}{{end}}", "ab"),
        ("{{range services}}{{.Name}}[{{join \",\" .Tags}}] {{end}}", "db[] web[v1] "),
        ("{{range $t, $s := service \"web|any\" | byTag}}{{$t}}={{len $s}} {{end}}", "canary=1 v1=2 "),
        ("{{range service \"web|any\"}}{{if .Tags | contains \"canary\"}}{{.ID}}{{end}}{{end}}", "b"),
        ("{{range ls \"app\"}}{{.Key}}={{.Value}} {{end}}", "a=1 "),
        ("{{range tree \"app\"}}{{.Key}} {{end}}", "a sub/b "),
        ("{{with tree \"app\" | explode}}{{.sub.b}}{{end}}", "2"),
        (
            "{{key \"app/a\"}} {{keyOrDefault \"nope\" \"d\"}} {{keyExists \"app/a\"}} {{keyExists \"nope\"}}",
            "1 d true false",
        ),
        ("{{datacenters}} {{7 | subtract 2}} {{10 | divide 4}}", "[dc1] 5 2"),
        ("{{define \"x\"}}<{{.}}>{{end}}{{executeTemplate \"x\" 42 | toUpper}}", "<42>"),
        ("{{\"a,b\" | split \",\" | toJSON}}", "[\"a\",\"b\"]"),
        ("{{range service \"web|any\"}}{{if .Tags.Contains \"canary\"}}{{.ID}}{{end}}{{end}}", "b"),
        ("{{range $s := service \"web|any\"}}{{if $s.Tags.Contains \"v1\"}}{{$s.ID}}{{end}}{{end}}", "ab"),
        ("{{with index (service \"web|any\") 0}}{{with .Tags}}{{.Contains \"v1\"}}{{end}}{{end}}", "true"),
    ];
    for (template, want) in cases {
        assert_eq!(render(template, &shared).as_deref(), Ok(*want), "{template}");
    }
    // Every query a template names is discovered in one pass, with or without data yet.
    let set = TemplateSet::from_text_in(
        Language::Go,
        "{{range services}}{{range service .Name}}{{end}}{{end}}{{key \"k\"}}",
        shared.clone(),
    )
    .expect("compiles");
    let pass = set.render().pass;
    let db = Dependency::Service { name: "db".into(), tag: None, dc: None };
    assert!(
        pass.used.contains(&web)
            && pass.used.contains(&db)
            && pass.used.contains(&Dependency::Key("k".into()))
    );
    assert!(pass.missing.contains(&db), "db has no data yet");
}

#[test]
fn scratch_is_one_pad_per_template_emptied_each_render() {
    let shared = Arc::new(Shared::new(0));
    let text = "{{ if scratch.Key \"n\" }}stale{{ end }}{{ scratch.Set \"n\" 1 }}{{ scratch.SetX \"n\" 2 }}\
                {{ scratch.Get \"n\" }} {{ scratch.MapSet \"m\" \"b\" 2 }}{{ scratch.MapSet \"m\" \"a\" 1 }}\
                {{ scratch.MapSetX \"m\" \"a\" 9 }}{{ scratch.MapValues \"m\" }} {{ scratch.Get \"m\" }}";
    let set = TemplateSet::from_text_in(Language::Go, text, shared).expect("compiles");
    for _ in 0..2 {
        assert_eq!(set.render().outputs[0].as_deref(), Ok("1 [1 2] map[a:1 b:2]"));
    }
    let err = render("{{ scratch.Nope 1 }}", &Arc::new(Shared::new(0))).expect_err("unknown method");
    assert!(err.contains("\"scratch.Nope\" not defined"), "{err}");
}

#[test]
fn safe_ls_on_an_empty_prefix_holds_the_output_back() {
    let shared = Arc::new(Shared::new(0));
    shared.update(&Dependency::Tree("empty".into()), json!([]));
    let set = TemplateSet::from_text_in(Language::Go, "{{range safeLs \"empty\"}}x{{end}}", shared.clone())
        .expect("compiles");
    assert!(set.render().pass.missing.contains(&Dependency::Tree("empty".into())));
    let set =
        TemplateSet::from_text_in(Language::Go, "{{range ls \"empty\"}}x{{end}}", shared).expect("compiles");
    assert!(set.render().pass.missing.is_empty(), "plain ls renders an empty prefix");
}
