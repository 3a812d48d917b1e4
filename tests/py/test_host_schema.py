"""The documented schemas (results/schema/*.json) describe the files the binaries and the runner write."""
import glob
import json
import os

import pytest

TYPES = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float), "boolean": bool,
         "null": type(None)}


def violations(doc, schema, where="$"):
    """The subset of JSON Schema the files use: type, const, enum, required, properties, items,
    additionalProperties."""
    out = []
    types = schema.get("type")
    if types:
        types = types if isinstance(types, list) else [types]
        ok = any(isinstance(doc, TYPES[t]) and not (t in ("integer", "number") and isinstance(doc, bool))
                 for t in types)
        if not ok:
            return ["%s: %r is not %s" % (where, doc, types)]
    if "const" in schema and doc != schema["const"]:
        out.append("%s: %r is not %r" % (where, doc, schema["const"]))
    if "enum" in schema and doc not in schema["enum"]:
        out.append("%s: %r not in %r" % (where, doc, schema["enum"]))
    if isinstance(doc, dict):
        out += ["%s: no %s" % (where, k) for k in schema.get("required", []) if k not in doc]
        for k, v in doc.items():
            sub = schema.get("properties", {}).get(k, schema.get("additionalProperties"))
            if isinstance(sub, dict):
                out += violations(v, sub, "%s.%s" % (where, k))
    if isinstance(doc, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(doc):
            out += violations(v, schema["items"], "%s[%d]" % (where, i))
    return out


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def schemas(repo_root):
    d = os.path.join(repo_root, "results", "schema")
    found = {n: load(os.path.join(d, n + ".schema.json")) for n in ("manifest", "conformance", "perf")}
    found["conformance-v1"] = load(os.path.join(d, "conformance-v1.schema.json"))
    return found


def test_the_checker_rejects_what_it_should(schemas):
    assert violations({"schema": "pagelab.conformance/2"}, schemas["conformance"])
    assert violations({"context": {}, "benchmarks": [{"run_type": "other"}]}, schemas["perf"])


@pytest.mark.parametrize("name,kind", [("manifest.json", "manifest"), ("conformance.json", "conformance"),
                                       ("perf.json", "perf")])
def test_fixture_files_match_their_schema(fixtures_dir, schemas, name, kind):
    runs = sorted(glob.glob(os.path.join(fixtures_dir, "runs", "*")))
    assert runs
    docs = [load(os.path.join(r, name)) for r in runs]
    if kind == "manifest":
        # Manifests of the first version are read, not written: the schema file describes the current one.
        docs = [d for d in docs if d["schema"] == schemas["manifest"]["properties"]["schema"]["const"]]
        assert docs, "one fixture run must have a current manifest"
    for d in docs:
        # Conformance files of the first version are read too: each checks against its own schema.
        which = "conformance-v1" if kind == "conformance" and d.get("schema") == "pagelab.conformance/1" else kind
        assert violations(d, schemas[which]) == []
