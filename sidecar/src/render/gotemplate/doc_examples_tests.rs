//! The examples of consul-template's documentation (its templating-language page), rewritten by us
//! as fixtures: each template against catalog data shaped like the page's, to the output the page
//! says consul-template renders.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::render::deps::Dependency;
use crate::render::helpers::Shared;
use crate::render::template::{Language, TemplateSet};

fn kv(pairs: &[(&str, &str)]) -> Value {
    Value::Array(pairs.iter().map(|(k, v)| json!({"Key": k, "Value": v, "Flags": 0})).collect())
}

fn catalog() -> Arc<Shared> {
    let shared = Arc::new(Shared::new(0));
    let web = |id: &str, node: &str, address: &str, port: u16, status: &str, tags: &[&str]| {
        json!({"ID": id, "Name": "web", "Tags": tags, "Address": address, "Port": port, "Node": node,
               "ServiceMeta": {}, "Status": status})
    };
    shared.update(
        &Dependency::Service { name: "web".into(), tag: None, dc: None },
        json!([
            web("web01", "node1", "10.5.2.45", 2492, "passing", &["production"]),
            web("web02", "node2", "10.2.6.61", 2904, "passing", &["canary", "production"]),
            web("web03", "node3", "10.2.6.62", 2904, "critical", &["canary"]),
        ]),
    );
    shared.update(&Dependency::Services, json!([{"Name": "node01", "Tags": ["tag1", "tag2", "tag3"]}]));
    shared.update(
        &Dependency::Tree("service/redis".into()),
        kv(&[("service/redis/maxconns", "15"), ("service/redis/minconns", "5")]),
    );
    shared.update(
        &Dependency::Tree("groups".into()),
        kv(&[
            ("groups/elasticsearch/es1", "1"),
            ("groups/elasticsearch/es2", "1"),
            ("groups/elasticsearch/es3", "1"),
        ]),
    );
    shared.update(
        &Dependency::Tree("config".into()),
        kv(&[("config/admin/port", "1234"), ("config/maxconns", "5"), ("config/minconns", "2")]),
    );
    shared.update(&Dependency::Key("service/redis/maxconns".into()), json!("15"));
    shared.update(&Dependency::Key("service/redis/timeout".into()), Value::Null);
    shared.update(&Dependency::Key("user/info".into()), json!(r#"{"name": "ada"}"#));
    shared.update(&Dependency::Key("feature/enabled".into()), json!("true"));
    shared.update(
        &Dependency::LocalNode,
        json!({"Node": {"Node": "n1", "Address": "10.5.2.6"}, "Services": []}),
    );
    shared.update(&Dependency::Datacenters, json!(["dc1"]));
    shared
}

#[test]
fn consul_template_documentation_examples() {
    let shared = catalog();
    let examples: &[(&str, &str)] = &[
        (
            "{{ range service \"web\" }}\nserver {{ .Name }} {{ .Address }}:{{ .Port }}{{ end }}",
            "\nserver web 10.5.2.45:2492\nserver web 10.2.6.61:2904",
        ),
        ("{{ range services }}\n{{ .Name }}: {{ .Tags | join \",\" }}{{ end }}", "\nnode01: tag1,tag2,tag3"),
        ("{{ range ls \"service/redis\" }}\n{{ .Key }}:{{ .Value }}{{ end }}", "\nmaxconns:15\nminconns:5"),
        (
            "{{ range tree \"config\" }}\n{{ .Key }} {{ .Value }}{{ end }}",
            "\nadmin/port 1234\nmaxconns 5\nminconns 2",
        ),
        ("{{ key \"service/redis/maxconns\" }}", "15"),
        ("{{ keyOrDefault \"service/redis/timeout\" \"5\" }}", "5"),
        ("{{ if keyExists \"service/redis/timeout\" }}yes{{ else }}no{{ end }}", "no"),
        ("{{ with node }}\n{{ .Node.Address }}{{ end }}", "\n10.5.2.6"),
        ("{{ range datacenters }}\n{{ . }}{{ end }}", "\ndc1"),
        (
            "{{ range $key, $pairs := tree \"groups\" | byKey }}{{ $key }}:\n{{ range $pair := $pairs }}  {{ .Key }}={{ .Value }}\n{{ end }}{{ end }}",
            "elasticsearch:\n  es1=1\n  es2=1\n  es3=1\n",
        ),
        (
            "{{ range $tag, $services := service \"web\" | byTag }}{{ $tag }}\n{{ range $services }} server {{ .Name }} {{ .Address }}:{{ .Port }}\n{{ end }}{{ end }}",
            "canary\n server web 10.2.6.61:2904\nproduction\n server web 10.5.2.45:2492\n server web 10.2.6.61:2904\n",
        ),
        (
            "{{ range service \"web\" }}{{ if .Tags | contains \"canary\" }}{{ .ID }}{{ end }}{{ end }}",
            "web02",
        ),
        (
            "{{ range service \"web|any\" }}{{ if in .Tags \"canary\" }}{{ .ID }} {{ end }}{{ end }}",
            "web02 web03 ",
        ),
        (
            "{{ tree \"config\" | explode | toJSON }}",
            r#"{"admin":{"port":"1234"},"maxconns":"5","minconns":"2"}"#,
        ),
        (
            "{{ tree \"config\" | explode | toJSONPretty }}",
            "{\n  \"admin\": {\n    \"port\": \"1234\"\n  },\n  \"maxconns\": \"5\",\n  \"minconns\": \"2\"\n}",
        ),
        (
            "{{ tree \"config\" | explode | toYAML }}",
            "admin:\n  port: \"1234\"\nmaxconns: \"5\"\nminconns: \"2\"",
        ),
        (
            "{{ tree \"config\" | explode | toYAML | indent 4 }}",
            "    admin:\n      port: \"1234\"\n    maxconns: \"5\"\n    minconns: \"2\"",
        ),
        ("{{ with tree \"config\" | explode }}{{ .admin.port }}{{ end }}", "1234"),
        ("{{ range $i := loop 5 8 }}\nstanza-{{ $i }}{{ end }}", "\nstanza-5\nstanza-6\nstanza-7"),
        ("{{ range loop 2 }}\n# Comment{{ end }}", "\n# Comment\n# Comment"),
        ("{{ with $d := key \"user/info\" | parseJSON }}{{ $d.name }}{{ end }}", "ada"),
        ("{{ if key \"feature/enabled\" | parseBool }}on{{ end }}", "on"),
        ("{{ \"1.2\" | parseFloat }} {{ \"1\" | parseInt }} {{ \"1\" | parseUint }}", "1.2 1 1"),
        ("{{ if \"foo.bar\" | regexMatch \"foo([.a-z]+)\" }}match{{ end }}", "match"),
        ("{{ \"foo.bar\" | regexReplaceAll \"foo([.a-z]+)\" \"$1\" }}", ".bar"),
        ("{{ \"foo.bar\" | replaceAll \".\" \"_\" }}", "foo_bar"),
        ("{{ \"foo\\nbar\\n\" | split \"\\n\" | join \",\" }}", "foo,bar"),
        (
            "{{ \"bladibla\" | sha256Hex }}",
            "54cf4c66bcabb5c20e25331c01dd600b73369e97a947861bd8d3a0e0b8b3d70b",
        ),
        ("{{ base64Encode \"hello\" }} {{ base64Decode \"aGVsbG8=\" }}", "aGVsbG8= hello"),
        ("{{ or (env \"CENSUS_SURELY_UNSET_CLUSTER_ID\") \"12345\" }}", "12345"),
        ("{{ \"hello world\" | toTitle }} {{ \"A\" | toLower }}{{ \"b\" | toUpper }}", "Hello World aB"),
        (
            "{{ define \"custom\" }}my custom template{{ end }}{{ executeTemplate \"custom\" }}|{{ $var := executeTemplate \"custom\" }}{{ $var }}",
            "my custom template|my custom template",
        ),
        (
            "{{ add 1 2 }} {{ 7 | subtract 2 }} {{ 2 | multiply 2 }} {{ 10 | divide 2 }} {{ 10 | modulo 3 }}",
            "3 5 4 5 1",
        ),
        ("{{ 2 | minimum 5 }} {{ 2 | maximum 5 }}", "2 5"),
        ("{{ containsAll (\"canary production\" | split \" \") (index (service \"web\") 1).Tags }}", "true"),
    ];
    for (template, want) in examples {
        let set = TemplateSet::from_text_in(Language::Go, template, shared.clone()).expect(template);
        let rendered = set.render();
        assert!(rendered.pass.missing.is_empty(), "{template}: missing {:?}", rendered.pass.missing);
        let out = rendered.outputs.into_iter().next().expect("output");
        assert_eq!(out.as_deref(), Ok(*want), "{template}");
    }
}
