#!/usr/bin/env python3
"""Small manifest helper for scripts/k8s/up.sh (stdlib + PyYAML only).

Subcommands (all write JSON to stdout, which kubectl accepts with -f -):
  webhooks DIR PORT CA_FILE [NAME_PREFIX]
      Render an upstream kubebuilder webhook kustomization dir (manifests.yaml +
      JSON6902 patches listed in kustomization.yaml) and turn every
      clientConfig.service into clientConfig.url=https://127.0.0.1:PORT<path>
      with caBundle=base64(CA_FILE).
  kustomize DIR
      Render a (simple) kustomization: resources (files or dirs, recursively),
      `labels` (pairs added to metadata.labels) and `images` (newTag/newName).
  status STATUS_DIR OUT_JSON KEY=VALUE...
      Collect STATUS_DIR/<component> files (one line "ok" or "missing: why")
      into OUT_JSON together with the KEY=VALUE metadata.
"""

import base64
import copy
import json
import os
import sys


def _yaml():
    try:
        import yaml  # noqa: PLC0415
    except ImportError:  # pragma: no cover
        sys.exit("manifests.py needs PyYAML (pip install pyyaml)")
    return yaml


def load_docs(path):
    with open(path) as f:
        return [d for d in _yaml().safe_load_all(f) if d]


def load_kustomization(d):
    for name in ("kustomization.yaml", "kustomization.yml", "Kustomization"):
        p = os.path.join(d, name)
        if os.path.exists(p):
            return load_docs(p)[0]
    raise SystemExit(f"no kustomization in {d}")


def _ptr(path):
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def json_patch(doc, ops):
    """Minimal RFC 6902 (add/replace/remove), enough for kubebuilder patches."""
    for op in ops:
        parts = _ptr(op["path"])
        parent = doc
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent.setdefault(p, {})
        last = parts[-1]
        if isinstance(parent, list):
            idx = len(parent) if last == "-" else int(last)
            if op["op"] == "add":
                parent.insert(idx, copy.deepcopy(op["value"]))
            elif op["op"] == "replace":
                parent[idx] = copy.deepcopy(op["value"])
            elif op["op"] == "remove":
                del parent[idx]
        else:
            if op["op"] in ("add", "replace"):
                parent[last] = copy.deepcopy(op["value"])
            elif op["op"] == "remove":
                parent.pop(last, None)
    return doc


def _matches(target, doc):
    if not target:
        return True
    gv = doc.get("apiVersion", "")
    group, _, version = gv.rpartition("/")
    checks = {"group": group, "version": version, "kind": doc.get("kind"), "name": doc.get("metadata", {}).get("name")}
    return all(target.get(k) in (None, v) for k, v in checks.items())


def render(d):
    """Render kustomization dir d -> list of docs (subset of kustomize)."""
    k = load_kustomization(d)
    docs = []
    for r in k.get("resources", []):
        p = os.path.normpath(os.path.join(d, r))
        docs.extend(render(p) if os.path.isdir(p) else load_docs(p))
    for patch in k.get("patches", []) + k.get("patchesJson6902", []):
        if "path" not in patch:
            continue
        ops = load_docs(os.path.join(d, patch["path"]))
        ops = ops[0] if len(ops) == 1 and isinstance(ops[0], list) else ops
        for doc in docs:
            if _matches(patch.get("target"), doc):
                if isinstance(ops, list):
                    json_patch(doc, ops)
    for lab in k.get("labels", []):
        for doc in docs:
            doc.setdefault("metadata", {}).setdefault("labels", {}).update(lab.get("pairs", {}))
    images = {i["name"]: i for i in k.get("images", [])}
    if images:
        for doc in docs:
            _retag(doc, images)
    return docs


def _retag(node, images):
    if isinstance(node, dict):
        for key, val in node.items():
            if key == "image" and isinstance(val, str):
                name = val.rsplit(":", 1)[0] if ":" in val.rsplit("/", 1)[-1] else val
                if name in images:
                    img = images[name]
                    tag = img.get("newTag", val.rsplit(":", 1)[-1] if name != val else "latest")
                    node[key] = f"{img.get('newName', name)}:{tag}"
            else:
                _retag(val, images)
    elif isinstance(node, list):
        for v in node:
            _retag(v, images)


def cmd_webhooks(d, port, ca_file, prefix=""):
    with open(ca_file, "rb") as f:
        ca = base64.b64encode(f.read()).decode()
    docs = render(d)
    out = []
    for doc in docs:
        if not doc.get("kind", "").endswith("WebhookConfiguration"):
            continue
        for wh in doc.get("webhooks", []):
            svc = wh["clientConfig"].pop("service")
            wh["clientConfig"]["url"] = f"https://127.0.0.1:{port}{svc.get('path', '/')}"
            wh["clientConfig"]["caBundle"] = ca
        doc["metadata"]["name"] = prefix + doc["metadata"]["name"]
        out.append(doc)
    return out


def cmd_status(status_dir, out_json, meta):
    comps = {}
    for name in sorted(os.listdir(status_dir)):
        with open(os.path.join(status_dir, name)) as f:
            comps[name] = f.read().strip()
    data = {}
    for kv in meta:
        k, _, v = kv.partition("=")
        data[k] = int(v) if v.isdigit() else v
    data["components"] = comps
    data["all_ok"] = all(v == "ok" for v in comps.values())
    tmp = out_json + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, out_json)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd = argv[1]
    if cmd == "webhooks":
        docs = cmd_webhooks(argv[2], int(argv[3]), argv[4], *argv[5:6])
    elif cmd == "kustomize":
        docs = render(argv[2])
    elif cmd == "status":
        return cmd_status(argv[2], argv[3], argv[4:])
    else:
        sys.exit(__doc__)
    json.dump({"apiVersion": "v1", "kind": "List", "items": docs}, sys.stdout)


if __name__ == "__main__":
    main(sys.argv)
