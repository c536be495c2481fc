"""Least privilege in the deployment files (issue #15, finding 7), run by
deploy/check:

  compose FILE          each service mounts only its own files volume (never
                        the bootstrap volume, which holds the CA key), gets
                        only its own database password, and connects as its
                        own role;
  k8s SERVICE... < YAML each workload of a rendered overlay mounts only
                        Secrets named for itself, and each service's
                        database URL names a role of its own.

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
        for volume in doc["spec"]["template"]["spec"].get("volumes", []):
            secret = volume.get("secret", {}).get("secretName")
            if secret and not any(a and secret.startswith(a) for a in allowed):
                problems.append(f"k8s: {name} mounts the Secret {secret}")
    return problems


if __name__ == "__main__":
    if sys.argv[1] == "compose":
        found = compose(sys.argv[2])
    else:
        found = k8s(list(yaml.safe_load_all(sys.stdin)))
    for problem in found:
        print(problem, file=sys.stderr)
    sys.exit(1 if found else 0)
