"""End-to-end: `recstream schema validate|check` exit codes and output."""
import json
import os
import shutil
import subprocess
import tempfile

import rs

R = rs.Runner()
TMP = tempfile.mkdtemp(prefix="rs-e2e-schema-")

SCHEMA = {
    "type": "object",
    "required": ["userId", "eventType"],
    "properties": {
        "userId": {"type": "string", "minLength": 1},
        "eventType": {"enum": ["view", "click", "purchase"]},
        "price": {"type": "number", "minimum": 0},
        "properties": {"type": "object", "properties": {"price": {"type": "number"}}},
    },
    "additionalProperties": False,
}


def write(name, content):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(content if isinstance(content, str) else json.dumps(content))
    return path


def run(*args, stdin=None):
    return subprocess.run([rs.BIN, "schema"] + list(args), input=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


SCHEMA_PATH = write("event.schema.json", SCHEMA)


def test_validate_file_valid():
    inst = write("ok.json", {"userId": "u1", "eventType": "view", "price": 3.5})
    p = run("validate", SCHEMA_PATH, inst)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "valid\n", p.stdout


def test_validate_file_invalid_lists_every_error():
    inst = write("bad.json", {"eventType": "teleport", "price": "abc", "extra": 1,
                              "properties": {"price": "abc"}})
    p = run("validate", SCHEMA_PATH, inst)
    assert p.returncode == 1, (p.returncode, p.stderr)
    line = p.stdout.strip()
    assert line.startswith("invalid: "), line
    errors = line[len("invalid: "):].split("; ")
    assert '/eventType: "teleport" is not one of ["view","click","purchase"]' in errors, errors
    assert '/price: "abc" is not of type "number"' in errors, errors
    assert '/properties/price: "abc" is not of type "number"' in errors, errors
    assert '/extra: property "extra" is not allowed (additionalProperties is false)' in errors
    assert '(root): required property "userId" is missing' in errors, errors
    assert len(errors) == 5, errors


def test_validate_ndjson_stdin():
    lines = [
        json.dumps({"userId": "a", "eventType": "view"}),
        "",
        json.dumps({"userId": "b", "eventType": "click", "price": -1}),
        json.dumps({"userId": "c", "eventType": "purchase"}),
    ]
    p = run("validate", SCHEMA_PATH, stdin="\n".join(lines) + "\n")
    assert p.returncode == 1, p.stderr
    assert p.stdout.splitlines() == [
        "1: valid",
        "3: invalid: /price: -1 is less than the minimum of 0",
        "4: valid",
    ], p.stdout


def test_validate_ndjson_all_valid_and_malformed_line():
    ok = json.dumps({"userId": "a", "eventType": "view"})
    p = run("validate", SCHEMA_PATH, stdin=ok + "\n" + ok + "\n")
    assert p.returncode == 0 and p.stdout.splitlines() == ["1: valid", "2: valid"], p.stdout
    p = run("validate", SCHEMA_PATH, stdin=ok + '\n{"userId": \n' + ok + "\n")
    assert p.returncode == 2, p.returncode
    out = p.stdout.splitlines()
    assert out[0] == "1: valid" and out[2] == "3: valid", out
    assert out[1].startswith("2: error: malformed JSON at column"), out


def test_malformed_instance_file():
    inst = write("broken.json", '{\n  "userId": "a",\n  "eventType": \n}\n')
    p = run("validate", SCHEMA_PATH, inst)
    assert p.returncode == 2, p.returncode
    assert "broken.json: malformed JSON at line 4" in p.stderr, p.stderr


def test_unreadable_files():
    p = run("validate", os.path.join(TMP, "missing.json"))
    assert p.returncode == 2 and "cannot read" in p.stderr and "missing.json" in p.stderr
    inst = os.path.join(TMP, "missing-instance.json")
    p = run("validate", SCHEMA_PATH, inst)
    assert p.returncode == 2 and "missing-instance.json" in p.stderr, p.stderr


def test_check():
    p = run("check", SCHEMA_PATH)
    assert p.returncode == 0 and p.stdout.strip().endswith(": ok"), (p.returncode, p.stdout)
    bad = write("bad.schema.json", {"properties": {"price": {"type": "numbr"}}})
    p = run("check", bad)
    assert p.returncode == 2, p.returncode
    assert '#/properties/price/type: unknown type "numbr"' in p.stderr, p.stderr
    remote = write("remote.schema.json", {"$ref": "http://localhost:1234/integer.json"})
    p = run("check", remote)
    assert p.returncode == 2 and "remote references are not fetched" in p.stderr, p.stderr
    p = run("validate", bad, stdin="{}\n")
    assert p.returncode == 2 and p.stdout == "", (p.returncode, p.stdout)
    notjson = write("notjson.schema.json", "{type: object}")
    p = run("check", notjson)
    assert p.returncode == 2 and "malformed JSON at line 1" in p.stderr, p.stderr


def test_help_and_usage():
    p = run("--help")
    assert p.returncode == 0 and "recstream schema validate" in p.stdout
    p = run()
    assert p.returncode == 2
    p = run("frobnicate")
    assert p.returncode == 2 and "unknown subcommand" in p.stderr
    p = rs.run_cli("--help")
    assert "schema" in p.stdout


for t in [test_validate_file_valid, test_validate_file_invalid_lists_every_error,
          test_validate_ndjson_stdin, test_validate_ndjson_all_valid_and_malformed_line,
          test_malformed_instance_file, test_unreadable_files, test_check, test_help_and_usage]:
    R.run(t)
shutil.rmtree(TMP, ignore_errors=True)
R.finish()
