"""Checks and packaging for scripts/deploy, with no AWS call.

    deploy.py overrides TEMPLATE ENV_FILE ENV [KEY=VALUE ...]
        Validate the environment file against the template's parameters and print
        one KEY=VALUE line per parameter override (the environment file's, then
        the ones given here, which scripts/deploy owns). Prints the deploy settings
        first as '#setting NAME VALUE' lines; AccountListFile as the file's full
        path, followed by '#setting AccountListCount N', its number of accounts.
    deploy.py package TEMPLATE OUT BUCKET PREFIX
        Write TEMPLATE to OUT with every local DefinitionS3Location replaced by
        its S3 location under PREFIX (content-addressed), and print
        'LOCAL_PATH<TAB>KEY' for each file to upload.
    deploy.py check-zip ZIP ARCH
        Check a Lambda package: one executable file named bootstrap, an ELF binary
        for ARCH (arm64 or x86_64).

Errors go to stderr, one line each naming the file and field, with exit status 2.
"""

import hashlib
import json
import os
import re
import stat
import sys
import zipfile

import yaml

# Deploy settings an environment file may hold beside its Parameters.
SETTINGS = ("StackName", "Region", "CodeBucket", "CodePrefix", "AccountListFile")
# The most accounts Parameters.AccountIds may hold: the event rules' account
# filter (EventBridge's limit on a pattern) holds about 100.
MAX_ACCOUNT_IDS = 100
# The most bytes an accounts file may hold (what the functions read at start-up).
MAX_ACCOUNT_LIST_BYTES = 1 << 20
ACCOUNT_ID = re.compile(r"[0-9]{12}")
ELF_MACHINE = {"x86_64": 0x3E, "arm64": 0xB7}


class Refusal(Exception):
    pass


class _Loader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (!Ref, !Sub, ...) kept as plain values."""


def _any_tag(loader, _suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


_Loader.add_multi_constructor("!", _any_tag)


def template_parameters(path):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, _Loader).get("Parameters", {})


def _text(value, where):
    if value is None:
        raise Refusal(f"{where}: required for this environment and still null: set it")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, (str, int)) for v in value):
        return ",".join(str(v) for v in value)
    raise Refusal(f"{where}: a string, a number or a list of strings, not {json.dumps(value)}")


def check_value(name, spec, value, where):
    """Refuse a value CloudFormation would reject, naming the constraint."""
    kind = spec.get("Type", "String")
    if kind == "Number":
        try:
            number = float(value)
        except ValueError:
            raise Refusal(f"{where}: {value!r} is not a number") from None
        if "MinValue" in spec and number < float(spec["MinValue"]):
            raise Refusal(f"{where}: {value} is below the minimum {spec['MinValue']}")
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            raise Refusal(f"{where}: {value} is above the maximum {spec['MaxValue']}")
    if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
        allowed = ", ".join(str(v) for v in spec["AllowedValues"])
        raise Refusal(f"{where}: {value!r} is not one of {allowed}")
    if "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
        raise Refusal(f"{where}: {value!r} does not match {spec['AllowedPattern']}")
    if "MinLength" in spec and len(value) < int(spec["MinLength"]):
        raise Refusal(f"{where}: needs at least {spec['MinLength']} characters")
    if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
        raise Refusal(f"{where}: has more than {spec['MaxLength']} characters")
    # CloudFormation's own limit on any parameter value.
    if len(value.encode()) > 4096:
        raise Refusal(f"{where}: {len(value.encode())} bytes, over CloudFormation's 4,096")


def read_account_list(path, where):
    """The accounts of an accounts file: 12-digit IDs, one a line (commas, spaces
    and tabs also separate them), blank lines and '#' comments ignored. Refuses
    anything else, a repeated ID or an empty list, naming the file and line."""
    try:
        with open(path, "rb") as f:
            body = f.read()
    except OSError as e:
        raise Refusal(f"{where}: cannot be read: {e.strerror}") from None
    if len(body) > MAX_ACCOUNT_LIST_BYTES:
        raise Refusal(f"{where}: {len(body)} bytes, more than {MAX_ACCOUNT_LIST_BYTES}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Refusal(f"{where}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    first_line = {}
    # Split as the functions do: lines at \n, items at commas, spaces and tabs.
    for number, line in enumerate(text.split("\n"), 1):
        line = line.removesuffix("\r").split("#", 1)[0]
        for item in re.split(r"[, \t]+", line):
            if not item:
                continue
            if not ACCOUNT_ID.fullmatch(item):
                raise Refusal(f"{where}: line {number}: {item!r} is not a 12-digit account ID")
            if item in first_line:
                raise Refusal(
                    f"{where}: line {number}: account {item} repeats line {first_line[item]}"
                )
            first_line[item] = number
    if not first_line:
        raise Refusal(f"{where}: names no account (one 12-digit ID a line)")
    return list(first_line)


def account_list_file(doc, env_file, given, params):
    """The full path and account count of the environment's AccountListFile,
    refusing a setting the template or the other parameters cannot take."""
    where = f"{env_file}: AccountListFile"
    name = doc["AccountListFile"]
    if not isinstance(name, str) or not name.strip():
        here = os.path.dirname(env_file) or "."
        raise Refusal(f"{where}: a path to the accounts file, relative to {here}")
    if "AccountIds" in given:
        raise Refusal(
            f"{where}: set together with Parameters.AccountIds: keep the accounts in one, "
            "the AccountListFile for a large fleet, and leave Parameters.AccountIds out"
        )
    if not str(given.get("OrganizationId") or "").strip():
        raise Refusal(
            f"{where}: needs Parameters.OrganizationId: the event bus policy and the "
            "sts:AssumeRole of a large fleet are scoped by organization, not by account"
        )
    path = os.path.join(os.path.dirname(os.path.abspath(env_file)), name)
    if not os.path.isfile(path):
        raise Refusal(f"{where}: {name} is not a file (looked for {path})")
    path = os.path.normpath(path)
    count = len(read_account_list(path, f"{where}: {path}"))
    if "AccountListObject" not in params:
        raise Refusal(f"{where}: the template has no AccountListObject parameter to take it")
    return path, count


def overrides(template, env_file, env, owned):
    params = template_parameters(template)
    try:
        with open(env_file, encoding="utf-8") as f:
            doc = json.load(f)
    except json.JSONDecodeError as e:
        raise Refusal(f"{env_file}: not JSON ({e})") from None
    if not isinstance(doc, dict):
        raise Refusal(f"{env_file}: a JSON object with Parameters and deploy settings")
    for key in doc:
        if key != "Parameters" and key not in SETTINGS:
            known = ", ".join(("Parameters",) + SETTINGS)
            raise Refusal(f"{env_file}: unknown key {key!r} (known: {known})")
    given = doc.get("Parameters", {})
    if not isinstance(given, dict):
        raise Refusal(f"{env_file}: Parameters must be an object of parameter values")
    accounts = None
    if "AccountListFile" in doc:
        accounts = account_list_file(doc, env_file, given, params)
    values = {}
    for name, raw in given.items():
        where = f"{env_file}: Parameters.{name}"
        if name not in params:
            raise Refusal(f"{where}: the template has no such parameter")
        if name == "AccountListObject":
            raise Refusal(
                f"{where}: set by scripts/deploy from AccountListFile: leave it out and "
                "name the accounts file in AccountListFile (a path beside this file)"
            )
        if name in owned:
            raise Refusal(f"{where}: set by scripts/deploy, leave it out")
        values[name] = _text(raw, where)
        if name == "AccountIds":
            count = len([a for a in values[name].split(",") if a.strip()])
            if count > MAX_ACCOUNT_IDS:
                raise Refusal(
                    f"{where}: {count} accounts, more than the event rules' account filter "
                    f"holds (about {MAX_ACCOUNT_IDS}): put the accounts in an AccountListFile, "
                    "with Parameters.OrganizationId"
                )
    values.setdefault("Environment", env)
    values.update(owned)
    for name in owned:
        if name not in params:
            raise Refusal(f"{template}: has no parameter {name} for scripts/deploy to set")
    missing = [n for n, spec in params.items() if "Default" not in spec and n not in values]
    if missing:
        raise Refusal(f"{env_file}: required parameters missing: {', '.join(missing)}")
    for name, value in values.items():
        check_value(name, params[name], value, f"{env_file}: Parameters.{name}")
    settings = {}
    for key in SETTINGS:
        if key in doc and key != "AccountListFile":
            settings[key] = _text(doc[key], f"{env_file}: {key}")
    if accounts:
        settings["AccountListFile"], settings["AccountListCount"] = accounts[0], str(accounts[1])
    return settings, values


def package(template, out, bucket, prefix):
    """Point every local DefinitionS3Location at its content-addressed S3 key."""
    base = os.path.dirname(os.path.abspath(template))
    line = re.compile(r"^(\s*DefinitionS3Location:\s*)(\S+)\s*$")
    uploads, lines = [], []
    with open(template, encoding="utf-8") as f:
        for text in f:
            m = line.match(text)
            if m and not m.group(2).startswith(("{", "!", "s3://")):
                local = os.path.normpath(os.path.join(base, m.group(2)))
                if not os.path.isfile(local):
                    raise Refusal(f"{template}: DefinitionS3Location {m.group(2)} is not a file")
                with open(local, "rb") as body:
                    digest = hashlib.sha256(body.read()).hexdigest()[:16]
                key = f"{prefix}/statemachine/{digest}-{os.path.basename(local)}"
                text = f"{m.group(1)}{{Bucket: {bucket}, Key: {key}}}\n"
                uploads.append((local, key))
            lines.append(text)
    if not uploads:
        raise Refusal(f"{template}: no local DefinitionS3Location to package")
    with open(out, "w", encoding="utf-8") as f:
        f.writelines(lines)
    return uploads


def check_zip(path, arch):
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        if names != ["bootstrap"]:
            raise Refusal(f"{path}: holds {names}, not one file named bootstrap")
        info = z.getinfo("bootstrap")
        mode = info.external_attr >> 16
        if not mode & stat.S_IXUSR:
            raise Refusal(f"{path}: bootstrap is not executable (mode {oct(mode)})")
        head = z.open(info).read(20)
    if head[:4] != b"\x7fELF":
        raise Refusal(f"{path}: bootstrap is not an ELF binary")
    machine = int.from_bytes(head[18:20], "little")
    if machine != ELF_MACHINE[arch]:
        raise Refusal(f"{path}: bootstrap is built for ELF machine {machine:#x}, not {arch}")


def main(argv):
    try:
        if argv[:1] == ["overrides"] and len(argv) >= 4:
            owned = dict(a.split("=", 1) for a in argv[4:])
            settings, values = overrides(argv[1], argv[2], argv[3], owned)
            for key, value in settings.items():
                print(f"#setting {key} {value}")
            for key, value in values.items():
                print(f"{key}={value}")
        elif argv[:1] == ["package"] and len(argv) == 5:
            for local, key in package(*argv[1:]):
                print(f"{local}\t{key}")
        elif argv[:1] == ["check-zip"] and len(argv) == 3:
            check_zip(argv[1], argv[2])
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except Refusal as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
