"""Least privilege in the deployment files (issue #15, finding 7), run by
deploy/check:

  compose FILE          each service mounts only its own files volume (never
                        the bootstrap volume, which holds the CA key), gets
                        only its own database password, and connects as its
                        own role; only the one-shot gateway-seed gets the
                        credentials file;
  k8s SERVICE... < YAML each workload of a rendered overlay mounts only
                        Secrets named for itself, each service's database
                        URL names a role of its own, and no serving
                        container holds the seed credentials;
  node FILE...          the node agents (KMS plugin static pod, CSI
                        provider DaemonSet): no capability, no privilege
                        escalation, a read-only root filesystem, no service
                        account token, and of the host only their socket
                        directory (and the plugin's config directory, read
                        only); the EncryptionConfiguration's endpoint is the
                        plugin's socket; the example SecretProviderClass's
                        parameters are strings and its objects what the
                        provider accepts.

Prints one line per violation and exits 1 if there is any."""

import sys
from urllib.parse import urlparse

import yaml

# Service -> (its files volume or secret prefix, its database role suffix).
SERVICES = {
    "kms-service": ("kms", "kms"),
    "csms-service": ("csms", "csms"),
    "gateway": ("gateway", "iam"),
}
URL_ENV = {"kms": "OPENDEW_KMS_DATABASE_URL", "csms": "OPENDEW_CSMS_DATABASE_URL", "iam": "OPENDEW_IAM_DATABASE_URL"}


def compose(path):
    problems = []
    spec = yaml.safe_load(open(path))
    services = spec["services"]
    for name, service in services.items():
        mounts = [str(v).split(":")[0] for v in service.get("volumes", [])]
        if name != "bootstrap" and "bootstrap" in mounts:
            problems.append(f"compose: {name} mounts the bootstrap volume (the CA key, every service's keys)")
    roles = {}
    for name, (files, role) in SERVICES.items():
        service = services[name]
        mounts = [str(v).split(":")[0] for v in service.get("volumes", [])]
        if mounts != [f"{files}-files"]:
            problems.append(f"compose: {name} mounts {mounts}, not only {files}-files")
        secrets = [s if isinstance(s, str) else s["source"] for s in service.get("secrets", [])]
        if secrets != [f"db_password_{role}"]:
            problems.append(f"compose: {name} gets the secrets {secrets}, not only db_password_{role}")
        user = urlparse(service["environment"][URL_ENV[role]]).username
        roles[name] = user
        if user != f"opendew_{role}":
            problems.append(f"compose: {name} connects as {user!r}, not opendew_{role}")
    if len(set(roles.values())) != len(roles):
        problems.append(f"compose: services share a database role: {roles}")
    # The seeded SKs: only the one-shot seed step holds credentials.json.
    if "OPENDEW_CREDENTIALS_FILE" in services["gateway"].get("environment", {}):
        problems.append("compose: the serving gateway is given the credentials file (seed with gateway-seed)")
    seed = services.get("gateway-seed", {})
    seed_mounts = [str(v).split(":")[0] for v in seed.get("volumes", [])]
    if seed.get("command") != ["--migrate-only"] or seed_mounts != ["gateway-seed-files"]:
        problems.append("compose: gateway-seed must run --migrate-only with only gateway-seed-files")
    return problems


def k8s(documents):
    problems = []
    config = {}
    for doc in documents:
        if doc and doc.get("kind") == "ConfigMap" and doc["metadata"]["name"].startswith("opendew-config"):
            config.update(doc.get("data", {}))
    users = {role: urlparse(config.get(env, "")).username for role, env in URL_ENV.items()}
    for role, user in users.items():
        if user != f"opendew_{role}":
            problems.append(f"k8s: {URL_ENV[role]} connects as {user!r}, not opendew_{role}")
    for doc in documents:
        if not doc or doc.get("kind") not in ("Deployment", "StatefulSet"):
            continue
        name = doc["metadata"]["name"]
        if name not in SERVICES:
            continue
        own = SERVICES[name]
        allowed = (f"opendew-{name}", f"opendew-database-{own[1]}", "opendew-root-key" if name == "kms-service" else None)
        spec = doc["spec"]["template"]["spec"]
        seeds = set()
        for volume in spec.get("volumes", []):
            secret = volume.get("secret", {}).get("secretName")
            if secret and not any(a and secret.startswith(a) for a in allowed):
                problems.append(f"k8s: {name} mounts the Secret {secret}")
            if secret and secret.endswith("-seed"):
                seeds.add(volume["name"])
        # The seeded SKs reach the init container that seeds, never a
        # serving container.
        for c in spec["containers"]:
            env = {e["name"] for e in c.get("env", [])}
            mounted = {m["name"] for m in c.get("volumeMounts", [])}
            if "OPENDEW_CREDENTIALS_FILE" in env or mounted & seeds:
                problems.append(f"k8s: {name}/{c['name']} serves holding the seed credentials")
    return problems


# Host paths each node agent may mount: path -> may it write there.
HOST_PATHS = {
    "opendew-kms-plugin": {"/var/run/kmsplugin": True, "/etc/opendew-kms-plugin": False},
    "opendew-csi-provider": {"/var/run/secrets-store-csi-providers": True},
}
OBJECT_KEYS = {"secretName", "version", "versionStage", "fileName", "fileMode", "jsonKey"}


def pod_spec(doc):
    return doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]


def node(paths):
    problems = []
    docs = [d for p in paths for d in yaml.safe_load_all(open(p)) if d]
    sockets = {}
    agents = [d for d in docs if d["kind"] in ("Pod", "DaemonSet") and d["metadata"]["name"] in HOST_PATHS]
    if len(agents) != len(HOST_PATHS):
        problems.append(f"node: expected the agents {sorted(HOST_PATHS)}, found {[d['metadata']['name'] for d in agents]}")
    for doc in agents:
        name = doc["metadata"]["name"]
        spec = pod_spec(doc)
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"node: {name} mounts a service account token")
        if spec.get("hostPID") or spec.get("hostIPC"):
            problems.append(f"node: {name} shares the host's PID or IPC namespace")
        host = {v["name"]: v["hostPath"]["path"] for v in spec.get("volumes", []) if "hostPath" in v}
        for path in host.values():
            if path not in HOST_PATHS[name]:
                problems.append(f"node: {name} mounts the host's {path}")
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c.get("securityContext", {})
            if sc.get("privileged") or sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"node: {name}/{c['name']} may gain privileges")
            if sc.get("capabilities", {}).get("drop") != ["ALL"] or sc.get("capabilities", {}).get("add"):
                problems.append(f"node: {name}/{c['name']} keeps capabilities")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"node: {name}/{c['name']} writes its root filesystem")
            for m in c.get("volumeMounts", []):
                if m["name"] in host and not HOST_PATHS[name].get(host[m["name"]]) and not m.get("readOnly"):
                    problems.append(f"node: {name}/{c['name']} mounts {host[m['name']]} writable")
            env = {e["name"]: e.get("value") for e in c.get("env", [])}
            if "OPENDEW_KMS_PLUGIN_SOCKET" in env:
                sockets[name] = env["OPENDEW_KMS_PLUGIN_SOCKET"]
    for doc in docs:
        if doc["kind"] == "EncryptionConfiguration":
            endpoints = [p["kms"].get("endpoint") for r in doc["resources"] for p in r["providers"] if "kms" in p]
            versions = [p["kms"].get("apiVersion") for r in doc["resources"] for p in r["providers"] if "kms" in p]
            if endpoints != [f"unix://{sockets.get('opendew-kms-plugin')}"] or versions != ["v2"]:
                problems.append(f"node: the EncryptionConfiguration's KMS v2 endpoint {endpoints} is not the plugin's socket")
        if doc["kind"] == "SecretProviderClass":
            params = doc["spec"].get("parameters", {})
            if doc["spec"].get("provider") != "opendew":
                problems.append("node: the SecretProviderClass does not name provider opendew")
            if not all(isinstance(v, str) for v in params.values()):
                problems.append("node: SecretProviderClass parameters must all be strings")
            objects = yaml.safe_load(params.get("objects", "")) or []
            for o in objects if isinstance(objects, list) else [None]:
                if not isinstance(o, dict) or "secretName" not in o or set(o) - OBJECT_KEYS:
                    problems.append(f"node: SecretProviderClass object {o!r} is not one the provider accepts")
    return problems


if __name__ == "__main__":
    if sys.argv[1] == "compose":
        found = compose(sys.argv[2])
    elif sys.argv[1] == "node":
        found = node(sys.argv[2:])
    else:
        found = k8s(list(yaml.safe_load_all(sys.stdin)))
    for problem in found:
        print(problem, file=sys.stderr)
    sys.exit(1 if found else 0)
