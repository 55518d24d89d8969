"""Offline checks of the Helm chart helm/shoal and the plain manifests in deploy/.

Run by `cargo xtask chart` with the venv of tests/chart/requirements.txt:

    python tests/chart/check_chart.py [--repo DIR]

Uses the real Helm engine (helm-python-sdk: Helm's Go SDK through libhelm_c, no helm binary,
no cluster, no network) and the Kubernetes JSON schemas shipped in kubernetes-validate.

1. `helm lint --strict` of the chart with its defaults and with each helm/shoal/ci/*-values.yaml.
2. Render (helm template) the defaults and each ci values file; validate every manifest against
   the Kubernetes schemas (strict: unknown fields fail) of each version in KUBE_VERSIONS.
   ServiceMonitor and PrometheusRule (prometheus-operator CRDs, no schema offline) get
   structural assertions instead.
3. Assertions on what matters (see `check_render`).
4. values.schema.json and the chart's own guards reject bad values, each with the message that
   says what to set; static auth needs its tokens (an existing Secret or a value) and renders
   the same on every render (the chart generates no token: `lookup` is empty under helm
   template, Argo CD and Flux).
5. deploy/kustomize: every base file is validated; with `kubectl` on PATH the overlays are built
   (`kubectl kustomize`) and validated and checked like the chart's output.

Prints one line per check and closes with 'N passed, N failed'; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import base64
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from typing import Any, Callable

import helm_python as helm
import kubernetes_validate
import yaml

# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest that
# kubernetes-validate ships schemas for.
KUBE_VERSIONS = ["1.27.0", "1.37.0"]
# The version `helm lint` checks API versions against.
LINT_KUBE_VERSION = "v1.33.0"
# Kinds whose schemas are not available offline.
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
RELEASE = "shoal"
NAMESPACE = "mcp"
# The one value the defaults need: static auth's tokens (the Secret deploy/kustomize uses too).
BASE = {"shoal": {"auth": {"static": {"existingSecret": "shoal-tokens"}}}}
# What the refusal of static auth without tokens must name, from the schema and from the
# chart's own guard (which renders that skip the schema still meet).
NO_TOKENS_SCHEMA = ["/shoal/auth/static/existingSecret", "/shoal/auth/static/tokens"]
NO_TOKENS_GUARD = [
    "shoal.auth.mode=static needs its tokens",
    "set shoal.auth.static.existingSecret",
    "or shoal.auth.static.tokens",
]


class Checks:
    """Runs named checks, counting passes and failures."""

    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def check(self, name: str, body: Callable[[], None]) -> None:
        try:
            body()
        except Exception as error:  # noqa: BLE001 - every failure is reported, then counted
            self.failed += 1
            print(f"FAIL {name}: {error}")
            if not isinstance(error, AssertionError):
                traceback.print_exc()
        else:
            self.passed += 1
            print(f"ok   {name}")


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`extra` over `base`, mappings merged key by key (as Helm merges values)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def render(chart: helm.Chart, values: dict[str, Any]) -> list[dict[str, Any]]:
    """helm template: every manifest the chart renders with `values` (NOTES.txt left out)."""
    rendered = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                assert isinstance(doc, dict), f"{path}: a manifest is not a mapping"
                docs.append(doc)
    return docs


def validate(docs: list[dict[str, Any]]) -> list[str]:
    """Validates each manifest against each Kubernetes version's schemas; returns the kinds
    skipped as CRDs."""
    skipped = []
    for doc in docs:
        if doc["kind"] in CRD_KINDS:
            skipped.append(doc["kind"])
            continue
        for version in KUBE_VERSIONS:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                raise AssertionError(
                    f"{doc['kind']}/{doc['metadata']['name']} is not valid for Kubernetes "
                    f"{version}: {error.message} at {list(error.path)}"
                ) from None
    return skipped


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def shoal_deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    found = [
        doc
        for doc in docs
        if doc["kind"] == "Deployment"
        and doc["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
        == "server"
    ]
    assert len(found) == 1, f"expected one Shoal Deployment, found {len(found)}"
    return found[0]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def config_of(docs: list[dict[str, Any]], deployment: dict[str, Any]) -> dict[str, str]:
    """The SHOAL_* settings the container gets from its ConfigMap(s)."""
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    names = {ref["configMapRef"]["name"] for ref in container.get("envFrom", []) if "configMapRef" in ref}
    data: dict[str, str] = {}
    for doc in docs:
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] in names:
            data.update(doc.get("data", {}))
    assert data, "the container gets no ConfigMap through envFrom"
    return data


def seconds(duration: str) -> int:
    assert duration.endswith("s") and duration[:-1].isdigit(), f"{duration!r} is not whole seconds"
    return int(duration[:-1])


def check_render(docs: list[dict[str, Any]], values: dict[str, Any], helm_chart: bool) -> None:
    """What must hold of every rendering (chart or kustomize)."""
    deployment = shoal_deployment(docs)
    name = deployment["metadata"]["name"]
    pod = deployment["spec"]["template"]
    spec = pod["spec"]
    container = spec["containers"][0]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert set(ports) == {"mcp", "admin"}, f"container ports {ports}"

    # Probes hit /healthz and /readyz on the admin port (by name or number).
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path, f"{probe} path {get['path']}"
        assert get["port"] in ("admin", ports["admin"]), f"{probe} port {get['port']}"

    # Restricted securityContext.
    pod_sc = spec.get("securityContext", {})
    sc = container.get("securityContext", {})
    merged = {**pod_sc, **sc}
    assert merged.get("runAsNonRoot") is True, "runAsNonRoot"
    assert merged.get("runAsUser") == 65532, f"runAsUser {merged.get('runAsUser')}"
    assert sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem"
    assert sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation"
    assert sc.get("capabilities", {}).get("drop") == ["ALL"], "capabilities.drop ALL"
    assert merged.get("seccompProfile", {}).get("type") == "RuntimeDefault", "seccompProfile"
    assert "resources" in container and container["resources"].get("requests"), "resources"
    assert spec.get("topologySpreadConstraints"), "topologySpreadConstraints"

    # Listens on all interfaces; the server's own drain fits in the grace period.
    config = config_of(docs, deployment)
    assert config["SHOAL_LISTEN"] == f"0.0.0.0:{ports['mcp']}", config["SHOAL_LISTEN"]
    assert config["SHOAL_ADMIN_LISTEN"] == f"0.0.0.0:{ports['admin']}", config["SHOAL_ADMIN_LISTEN"]
    drain = seconds(config["SHOAL_SHUTDOWN_DELAY"]) + seconds(config["SHOAL_DRAIN_TIMEOUT"])
    grace = spec["terminationGracePeriodSeconds"]
    assert grace > drain, f"terminationGracePeriodSeconds {grace} <= shutdown delay + drain {drain}"

    # Secrets only by reference: no literal session host, token or password in the pod.
    env = env_of(container)
    for key in (
        "SHOAL_SESSION_HOST",
        "SHOAL_AUTH_TOKENS",
        "SHOAL_REQUEST_STATE_KEYS",
        "SHOAL_ADMIN_TOKEN",
        "SHOAL_UPSTREAM_CLIENT_SECRET",
    ):
        assert key not in config, f"{key} is inlined in a ConfigMap"
        if key in env:
            assert "value" not in env[key], f"{key} is inlined in the Deployment"
            assert "secretKeyRef" in env[key].get("valueFrom", {}), f"{key} is not a secretKeyRef"
    for item in container.get("env", []):
        assert "redis://" not in str(item.get("value", "")), f"{item['name']} inlines a Redis URL"
    uses_redis = config.get("SHOAL_SESSION_HOST") is None and "SHOAL_SESSION_HOST" in env
    if uses_redis:
        ref = env["SHOAL_SESSION_HOST"]["valueFrom"]["secretKeyRef"]
        secrets = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "Secret"}
        expected = values.get("redis", {}).get("existingSecret")
        if expected:
            assert ref["name"] == expected, f"Redis Secret {ref['name']}, want {expected}"
            assert ref["key"] == values["redis"].get("existingSecretKey", "url"), ref
            assert expected not in secrets, "the chart must not create the existing Secret"
        elif helm_chart:
            assert ref["name"] in secrets, f"Redis Secret {ref['name']} is not rendered"
            url = base64.b64decode(secrets[ref["name"]]["data"][ref["key"]]).decode()
            assert url.startswith("redis"), f"the chart's Redis Secret holds {url!r}"

    # The request-state key ring: the operator's Secret, by reference, when named.
    ring = values.get("shoal", {}).get("requestState", {}).get("existingSecret")
    if helm_chart and ring:
        ref = env["SHOAL_REQUEST_STATE_KEYS"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": ring, "key": values["shoal"]["requestState"].get("existingSecretKey", "keys")}, ref
    elif helm_chart:
        assert "SHOAL_REQUEST_STATE_KEYS" not in env, "a key ring nobody configured"

    # Unauthenticated only when chosen.
    auth = config.get("SHOAL_AUTH", "none")
    if config.get("SHOAL_ALLOW_UNAUTHENTICATED") == "true":
        assert auth == "none", "SHOAL_ALLOW_UNAUTHENTICATED with an auth mode"
        if helm_chart:
            assert values.get("shoal", {}).get("auth", {}).get("allowUnauthenticated") is True
    else:
        assert auth != "none", "auth none on 0.0.0.0 without SHOAL_ALLOW_UNAUTHENTICATED"
    if auth == "static":
        assert "secretKeyRef" in env["SHOAL_AUTH_TOKENS"]["valueFrom"], "static tokens"
        if helm_chart:
            check_tokens(docs, env["SHOAL_AUTH_TOKENS"]["valueFrom"]["secretKeyRef"], values)
    if helm_chart:
        check_oauth(docs, deployment, config, values)

    # The Service exposes both ports by name.
    services = [
        doc
        for doc in docs
        if doc["kind"] == "Service" and doc["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    ]
    assert len(services) == 1, f"expected one Service of the Deployment, found {len(services)}"
    assert {p["targetPort"] for p in services[0]["spec"]["ports"]} >= {"mcp", "admin"}

    # The HPA scales this Deployment; replicas are then left to it.
    hpas = [doc for doc in docs if doc["kind"] == "HorizontalPodAutoscaler"]
    for hpa in hpas:
        target = hpa["spec"]["scaleTargetRef"]
        assert (target["apiVersion"], target["kind"], target["name"]) == ("apps/v1", "Deployment", name), target
        assert hpa["apiVersion"] == "autoscaling/v2", hpa["apiVersion"]
        assert "behavior" in hpa["spec"], "HPA behavior"
        assert "replicas" not in deployment["spec"], "replicas set beside an HPA"
        assert uses_redis, "an HPA over in-memory sessions"
    if deployment["spec"].get("replicas", 1) > 1:
        assert uses_redis, "several replicas over in-memory sessions"

    if helm_chart:
        annotations = pod["metadata"].get("annotations", {})
        assert len(annotations.get("checksum/config", "")) == 64, "checksum/config annotation"
        auto = values.get("autoscaling", {})
        if auto.get("enabled"):
            assert len(hpas) == 1, "autoscaling.enabled renders no HPA"
            metrics = hpas[0]["spec"]["metrics"]
            names = {m["resource"]["name"] for m in metrics if m["type"] == "Resource"}
            assert names == {"cpu", "memory"}, f"HPA resource metrics {names}"
            for wanted in auto.get("podMetrics", []):
                assert any(
                    m["type"] == "Pods" and m["pods"]["metric"]["name"] == wanted["name"] for m in metrics
                ), f"HPA lacks pod metric {wanted['name']}"
        else:
            assert not hpas, "an HPA without autoscaling.enabled"
        pdb_wanted = values.get("pdb", {}).get("create", True)
        assert any(doc["kind"] == "PodDisruptionBudget" for doc in docs) == pdb_wanted, "pdb.create"
        sa_wanted = values.get("serviceAccount", {}).get("create", True)
        assert any(doc["kind"] == "ServiceAccount" for doc in docs) == sa_wanted, "serviceAccount.create"
        metrics_values = values.get("metrics", {})
        if metrics_values.get("serviceMonitor", {}).get("enabled"):
            monitor = one(docs, "ServiceMonitor")
            assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
            endpoint = monitor["spec"]["endpoints"][0]
            assert (endpoint["port"], endpoint["path"]) == ("admin", "/metrics"), endpoint
            assert monitor["spec"]["selector"]["matchLabels"].items() <= services[0]["metadata"]["labels"].items()
        else:
            assert not any(doc["kind"] == "ServiceMonitor" for doc in docs)
        if metrics_values.get("prometheusRule", {}).get("enabled"):
            rule = one(docs, "PrometheusRule")
            for group in rule["spec"]["groups"]:
                for item in group["rules"]:
                    assert item.get("alert") and item.get("expr"), item
                    assert item.get("annotations", {}).get("runbook"), f"{item['alert']} has no runbook"
            names = [item["alert"] for group in rule["spec"]["groups"] for item in group["rules"]]
            with open(os.path.join(REPO, "deploy", "prometheus", "shoal-alerts.yaml"), encoding="utf-8") as file:
                shipped = [item["alert"] for group in yaml.safe_load(file)["groups"] for item in group["rules"]]
            assert names[: len(shipped)] == shipped, f"the PrometheusRule's alerts {names} are not {shipped}"
            for item in rule["spec"]["groups"][0]["rules"][: len(shipped)]:
                expr = item["expr"]
                assert expr.count('job="') == expr.count(', namespace="'), f"{item['alert']}: job without namespace: {expr}"
        else:
            assert not any(doc["kind"] == "PrometheusRule" for doc in docs)
        dashboards = [doc for doc in docs if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].endswith("-dashboard")]
        if metrics_values.get("dashboard", {}).get("enabled"):
            assert len(dashboards) == 1, "metrics.dashboard.enabled makes one dashboard ConfigMap"
            assert dashboards[0]["metadata"]["labels"].get("grafana_dashboard") == "1", dashboards[0]["metadata"]["labels"]
            dashboard = json.loads(dashboards[0]["data"]["shoal-dashboard.json"])
            assert dashboard["schemaVersion"] >= 39 and dashboard["panels"], "not a Grafana dashboard"
        else:
            assert not dashboards, "a dashboard ConfigMap although metrics.dashboard.enabled is off"
        want_policy = values.get("networkPolicy", {}).get("enabled", False)
        assert any(doc["kind"] == "NetworkPolicy" for doc in docs) == want_policy, "networkPolicy.enabled"
        if values.get("redis", {}).get("enabled"):
            redis = [doc for doc in docs if doc["kind"] == "Deployment" and doc is not deployment]
            assert len(redis) == 1 and redis[0]["spec"]["replicas"] == 1, "quick-start Redis"
        else:
            assert all(doc["kind"] != "Deployment" or doc is deployment for doc in docs), "a stray Deployment"


# The oauth knobs the ConfigMap may carry (and only in mode oauth: the server refuses them in
# any other mode).
OAUTH_SETTINGS = {
    "SHOAL_UPSTREAM_ISSUER",
    "SHOAL_UPSTREAM_AUTHORIZATION_ENDPOINT",
    "SHOAL_UPSTREAM_TOKEN_ENDPOINT",
    "SHOAL_UPSTREAM_USERINFO_ENDPOINT",
    "SHOAL_UPSTREAM_SUBJECT_FIELD",
    "SHOAL_UPSTREAM_CLIENT_AUTH",
    "SHOAL_UPSTREAM_CLIENT_ID",
    "SHOAL_UPSTREAM_SCOPES",
    "SHOAL_SIGNING_KEYS_FILE",
    "SHOAL_ACCESS_TOKEN_TTL",
    "SHOAL_REFRESH_TOKEN_TTL",
    "SHOAL_DYNAMIC_REGISTRATION",
    "SHOAL_REGISTRATIONS_PER_MINUTE",
    "SHOAL_TRUSTED_PROXIES",
    "SHOAL_REDIRECT_URI_PATTERNS",
    "SHOAL_CLIENT_METADATA_DOCUMENTS",
    "SHOAL_RESOURCE_NAME",
}


def check_oauth(docs: list[dict[str, Any]], deployment: dict[str, Any], config: dict[str, str], values: dict[str, Any]) -> None:
    """Mode oauth: the settings from the values, the client secret by reference from the
    operator's Secret, the signing keys as a read-only file from theirs, no Secret made by the
    chart, and egress on 443 (and the issuer's own port). Other modes: none of it."""
    spec = deployment["spec"]["template"]["spec"]
    container = spec["containers"][0]
    env = env_of(container)
    volumes = {volume["name"]: volume for volume in spec.get("volumes", [])}
    mounts = {mount["name"]: mount for mount in container.get("volumeMounts", [])}
    auth = values.get("shoal", {}).get("auth", {})
    if auth.get("mode") != "oauth":
        assert not OAUTH_SETTINGS & set(config), f"oauth settings outside mode oauth: {OAUTH_SETTINGS & set(config)}"
        assert "SHOAL_UPSTREAM_CLIENT_SECRET" not in env, "an upstream client secret outside mode oauth"
        assert "signing-keys" not in volumes and "signing-keys" not in mounts, "signing keys outside mode oauth"
        return
    oauth = auth["oauth"]
    assert config["SHOAL_AUTH"] == "oauth", config["SHOAL_AUTH"]
    assert config["SHOAL_UPSTREAM_CLIENT_ID"] == oauth["upstreamClientId"], config["SHOAL_UPSTREAM_CLIENT_ID"]
    assert config["SHOAL_PUBLIC_URL"] == values["shoal"]["publicUrl"], config["SHOAL_PUBLIC_URL"]
    expected = {
        "SHOAL_UPSTREAM_ISSUER": oauth.get("upstreamIssuer") or None,
        "SHOAL_UPSTREAM_AUTHORIZATION_ENDPOINT": oauth.get("upstreamAuthorizationEndpoint") or None,
        "SHOAL_UPSTREAM_TOKEN_ENDPOINT": oauth.get("upstreamTokenEndpoint") or None,
        "SHOAL_UPSTREAM_USERINFO_ENDPOINT": oauth.get("upstreamUserinfoEndpoint") or None,
        "SHOAL_UPSTREAM_SUBJECT_FIELD": oauth.get("upstreamSubjectField") or None,
        "SHOAL_UPSTREAM_CLIENT_AUTH": oauth.get("upstreamClientAuth") or None,
        "SHOAL_UPSTREAM_SCOPES": ",".join(oauth.get("upstreamScopes", [])) or None,
        "SHOAL_ACCESS_TOKEN_TTL": oauth.get("accessTokenTtl", "1h"),
        "SHOAL_REFRESH_TOKEN_TTL": oauth.get("refreshTokenTtl", "720h"),
        "SHOAL_DYNAMIC_REGISTRATION": str(oauth.get("dynamicRegistration", True)).lower(),
        "SHOAL_REGISTRATIONS_PER_MINUTE": str(oauth.get("registrationsPerMinute", 10)),
        "SHOAL_TRUSTED_PROXIES": ",".join(oauth.get("trustedProxies", [])) or None,
        "SHOAL_REDIRECT_URI_PATTERNS": ",".join(oauth.get("redirectUriPatterns", [])) or None,
        "SHOAL_CLIENT_METADATA_DOCUMENTS": str(oauth.get("clientMetadataDocuments", True)).lower(),
        "SHOAL_REQUIRED_SCOPES": ",".join(oauth.get("requiredScopes", [])) or None,
        "SHOAL_TOOL_SCOPES": ";".join(f"{tool}={' '.join(scopes)}" for tool, scopes in sorted(oauth.get("toolScopes", {}).items())) or None,
        "SHOAL_RESOURCE_NAME": oauth.get("resourceName") or None,
    }
    wrong = {key: (config.get(key), want) for key, want in expected.items() if config.get(key) != want}
    assert not wrong, f"oauth settings (got, want): {wrong}"
    assert "SHOAL_ISSUER" not in config, "SHOAL_ISSUER (jwt) in mode oauth"
    assert ("SHOAL_UPSTREAM_ISSUER" in config) != ("SHOAL_UPSTREAM_AUTHORIZATION_ENDPOINT" in config), "not exactly one upstream provider"

    secret = oauth["clientSecret"]
    ref = env["SHOAL_UPSTREAM_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": secret["existingSecret"], "key": secret.get("existingSecretKey", "client-secret")}, ref
    made = {doc["metadata"]["name"] for doc in docs if doc["kind"] == "Secret"}
    assert secret["existingSecret"] not in made, "the chart must not create the client secret's Secret"

    keys = oauth.get("signingKeys", {})
    if keys.get("existingSecret"):
        assert keys["existingSecret"] not in made, "the chart must not create the signing keys' Secret"
        volume = volumes["signing-keys"]["secret"]
        assert volume["secretName"] == keys["existingSecret"], volume
        assert volume["defaultMode"] == 0o440, f"signing keys mode {oct(volume['defaultMode'])}"
        (item,) = volume["items"]
        assert item["key"] == keys.get("existingSecretKey", "signing-keys.pem"), item
        mount = mounts["signing-keys"]
        assert mount.get("readOnly") is True, "the signing keys are mounted writable"
        path = f"{mount['mountPath']}/{item['path']}"
        assert config["SHOAL_SIGNING_KEYS_FILE"] == path, f"SHOAL_SIGNING_KEYS_FILE {config['SHOAL_SIGNING_KEYS_FILE']}, mounted at {path}"
        assert spec["securityContext"].get("fsGroup") == spec["securityContext"].get("runAsGroup"), "the key file's group is not the process's"
    else:
        assert "SHOAL_SIGNING_KEYS_FILE" not in config and "signing-keys" not in volumes, "signing keys nobody configured"

    policies = [doc for doc in docs if doc["kind"] == "NetworkPolicy"]
    if policies:
        listed = [port["port"] for rule in policies[0]["spec"]["egress"] for port in rule.get("ports", []) if "to" not in rule]
        ports = set(listed)
        assert 443 in ports, f"no egress on 443 to the upstream provider and metadata documents: {ports}"
        for key in ("upstreamIssuer", "upstreamAuthorizationEndpoint", "upstreamTokenEndpoint", "upstreamUserinfoEndpoint"):
            if oauth.get(key):
                port = oauth[key].split("/")[2].rpartition(":")[2]
                if port.isdigit():
                    assert int(port) in ports, f"no egress to the port {port} of {key}: {ports}"
        tcp = [port["port"] for rule in policies[0]["spec"]["egress"] for port in rule.get("ports", []) if "to" not in rule and port["protocol"] == "TCP"]
        assert len(tcp) == len(set(tcp)), f"a port opened twice: {tcp}"


def check_tokens(docs: list[dict[str, Any]], ref: dict[str, str], values: dict[str, Any]) -> None:
    """The pod's tokens come from the existing Secret, untouched, or from the Secret the chart
    makes of shoal.auth.static.tokens, holding exactly that value."""
    static = values.get("shoal", {}).get("auth", {}).get("static", {})
    secrets = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "Secret"}
    existing = static.get("existingSecret")
    if existing:
        assert ref == {"name": existing, "key": static.get("existingSecretKey", "tokens")}, ref
        assert existing not in secrets, "the chart must not create the existing tokens Secret"
    else:
        assert ref["name"] in secrets, f"tokens Secret {ref['name']} is not rendered"
        secret = secrets[ref["name"]]
        tokens = base64.b64decode(secret["data"][ref["key"]]).decode()
        assert tokens == static["tokens"], "the chart's tokens Secret is not shoal.auth.static.tokens"
        annotations = secret["metadata"].get("annotations", {})
        assert "helm.sh/resource-policy" not in annotations, "a kept tokens Secret outlives the release"


# A complete oauth configuration (besides BASE), and what the refusal of each required value
# must say when it is left out.
OAUTH = {
    "shoal": {
        "publicUrl": "https://mcp.example.com/mcp",
        "auth": {
            "mode": "oauth",
            "static": {"existingSecret": ""},
            "oauth": {
                "upstreamIssuer": "https://kc.example.com/realms/mcp",
                "upstreamClientId": "shoal",
                "clientSecret": {"existingSecret": "shoal-oauth"},
            },
        },
    }
}
OAUTH_REQUIRED = {
    "upstreamIssuer": "shoal.auth.mode=oauth needs shoal.auth.oauth.upstreamIssuer",
    "upstreamClientId": "shoal.auth.mode=oauth needs shoal.auth.oauth.upstreamClientId",
    "clientSecret.existingSecret": "shoal.auth.mode=oauth needs shoal.auth.oauth.clientSecret.existingSecret",
    "publicUrl": "shoal.auth.mode=oauth needs shoal.publicUrl",
}
# A plain OAuth 2 provider (GitHub's endpoints) in place of OAUTH's issuer.
PLAIN_OAUTH2 = {
    "upstreamAuthorizationEndpoint": "https://github.com/login/oauth/authorize",
    "upstreamTokenEndpoint": "https://github.com/login/oauth/access_token",
    "upstreamUserinfoEndpoint": "https://api.github.com/user",
}


def oauth_without(missing: str) -> dict[str, Any]:
    """OAUTH over BASE with one required value emptied."""
    if missing == "publicUrl":
        return merged(OAUTH, {"shoal": {"publicUrl": ""}})
    *parents, leaf = missing.split(".")
    emptied: dict[str, Any] = {leaf: ""}
    for parent in reversed(parents):
        emptied = {parent: emptied}
    return merged(OAUTH, {"shoal": {"auth": {"oauth": emptied}}})


def load_values(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as file:
        values = helm.values_from_yaml(file.read())
    return values or {}


def check_chart(checks: Checks, repo: str) -> None:
    chart_dir = os.path.join(repo, "helm", "shoal")
    chart = helm.Chart.load(chart_dir)
    cases = []
    for path in sorted(glob.glob(os.path.join(chart_dir, "ci", "*-values.yaml"))):
        cases.append((os.path.relpath(path, repo), load_values(path)))
    assert cases, "no helm/shoal/ci/*-values.yaml"
    cases.append(("shoal.auth.static.tokens", merged(BASE, {"shoal": {"auth": {"static": {
        "existingSecret": "", "tokens": "ci=ci-token-1,ops=ops-token-2"}}}})))
    cases.append(("oauth with only its required values", merged(BASE, OAUTH)))
    cases.append(("oauth without metadata documents or registration, NetworkPolicy", merged(BASE, merged(OAUTH, {
        "networkPolicy": {"enabled": True},
        "shoal": {"auth": {"oauth": {"clientMetadataDocuments": False, "dynamicRegistration": False}}}}))))
    cases.append(("oauth at a plain OAuth 2 provider on other ports, NetworkPolicy", merged(BASE, merged(OAUTH, {
        "networkPolicy": {"enabled": True},
        "shoal": {"auth": {"oauth": {
            "upstreamIssuer": "",
            "upstreamAuthorizationEndpoint": "https://login.example.com:8443/authorize",
            "upstreamTokenEndpoint": "https://login.example.com:8443/token",
            "upstreamUserinfoEndpoint": "http://users.auth.svc:9000/me",
        }}}}))))

    for label, values in cases:

        def lint(values: dict[str, Any] = values) -> None:
            report = helm.lint(chart_dir, values or None, strict=True, kube_version=LINT_KUBE_VERSION)
            problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
            assert not problems, f"helm lint --strict: {problems}"

        checks.check(f"helm lint --strict ({label})", lint)

        def template(values: dict[str, Any] = values, label: str = label) -> None:
            docs = render(chart, values)
            skipped = validate(docs)
            kinds = sorted({doc["kind"] for doc in docs})
            print(f"     {label}: {len(docs)} manifests ({', '.join(kinds)}), "
                  f"Kubernetes {' and '.join(KUBE_VERSIONS)}; CRD kinds not schema-checked: {skipped or 'none'}")
            check_render(docs, values, helm_chart=True)

        checks.check(f"helm template + kubernetes-validate + assertions ({label})", template)

    def same_checksum_for_same_config() -> None:
        first = shoal_deployment(render(chart, BASE))
        second = shoal_deployment(render(chart, BASE))
        changed = shoal_deployment(render(chart, merged(BASE, {"shoal": {"logFormat": "text"}})))
        key = "checksum/config"
        annotations = [d["spec"]["template"]["metadata"]["annotations"][key] for d in (first, second, changed)]
        assert annotations[0] == annotations[1], "the checksum changes between identical renders"
        assert annotations[0] != annotations[2], "the checksum ignores a configuration change"

    checks.check("checksum/config follows the configuration", same_checksum_for_same_config)

    def tokens_are_the_same_on_every_render() -> None:
        def with_tokens(tokens: str) -> dict[str, Any]:
            return merged(BASE, {"shoal": {"auth": {"static": {"existingSecret": "", "tokens": tokens}}}})

        def secret_and_checksum(values: dict[str, Any]) -> tuple[Any, str]:
            docs = render(chart, values)
            secrets = [doc for doc in docs if doc["kind"] == "Secret" and doc["metadata"]["name"].endswith("-tokens")]
            assert len(secrets) == 1, f"expected one tokens Secret, found {len(secrets)}"
            annotations = shoal_deployment(docs)["spec"]["template"]["metadata"]["annotations"]
            return secrets[0]["data"], annotations["checksum/config"]

        first, second = (secret_and_checksum(with_tokens("ci=token-1")) for _ in range(2))
        assert first == second, "the tokens Secret or the checksum differs between identical renders"
        other = secret_and_checksum(with_tokens("ci=token-2"))
        assert other[0] != first[0], "the tokens Secret ignores shoal.auth.static.tokens"
        assert other[1] != first[1], "changed tokens do not roll the pods (checksum/config)"

    checks.check("static tokens render the same every time; a change rolls the pods", tokens_are_the_same_on_every_render)

    def grace_follows_drain() -> None:
        values = merged(BASE, {"shoal": {"shutdownDelay": "10s", "drainTimeout": "50s"}, "terminationGracePeriodMarginSeconds": 7})
        grace = shoal_deployment(render(chart, values))["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace == 67, f"terminationGracePeriodSeconds {grace}, want 10 + 50 + 7"

    checks.check("terminationGracePeriodSeconds = shutdownDelay + drainTimeout + margin", grace_follows_drain)

    no_static_source = {"shoal": {"auth": {"static": {"existingSecret": ""}}}}
    # Each case is BASE with one mistake (so that the refusal is for that mistake), and what
    # the message must name.
    rejected = [
        ("replicaCount: three (schema: type)", {"replicaCount": "three"}, ["/replicaCount"]),
        ("an unknown top-level key (schema: additionalProperties)", {"replicaCont": 3}, ["replicaCont"]),
        ("shoal.auth.mode: basic (schema: enum)", {"shoal": {"auth": {"mode": "basic"}}}, ["/shoal/auth/mode"]),
        ("shoal.logFormat: xml (schema: enum)", {"shoal": {"logFormat": "xml"}}, ["/shoal/logFormat"]),
        ("shoal.drainTimeout: 1m (schema: whole seconds)", {"shoal": {"drainTimeout": "1m"}}, ["/shoal/drainTimeout"]),
        ("redis.url: http://… (schema: pattern)", {"redis": {"url": "http://redis:6379"}}, ["/redis/url"]),
        ("static auth without existingSecret or tokens: the defaults (schema)", no_static_source, NO_TOKENS_SCHEMA),
        (
            "static auth with empty tokens (schema)",
            {"shoal": {"auth": {"static": {"existingSecret": "", "tokens": ""}}}},
            NO_TOKENS_SCHEMA,
        ),
        (
            "static auth with existingSecret and tokens (chart guard)",
            {"shoal": {"auth": {"static": {"tokens": "a=b"}}}},
            ["shoal.auth.static.existingSecret and shoal.auth.static.tokens exclude each other"],
        ),
        (
            "auth none without allowUnauthenticated (chart guard)",
            {"shoal": {"auth": {"mode": "none"}}},
            ["shoal.auth.allowUnauthenticated=true"],
        ),
        ("jwt without issuer (chart guard)", {"shoal": {"auth": {"mode": "jwt"}}}, ["shoal.auth.jwt.issuer"]),
        *(
            (f"oauth without {missing} (chart guard)", oauth_without(missing), [message])
            for missing, message in OAUTH_REQUIRED.items()
        ),
        (
            "oauth with an issuer and an endpoint (chart guard)",
            merged(OAUTH, {"shoal": {"auth": {"oauth": {"upstreamTokenEndpoint": PLAIN_OAUTH2["upstreamTokenEndpoint"]}}}}),
            ["the upstream provider is given twice", "shoal.auth.oauth.upstreamIssuer", "shoal.auth.oauth.upstreamTokenEndpoint"],
        ),
        (
            "oauth with two of the three endpoints (chart guard)",
            merged(OAUTH, {"shoal": {"auth": {"oauth": {
                "upstreamIssuer": "",
                "upstreamAuthorizationEndpoint": PLAIN_OAUTH2["upstreamAuthorizationEndpoint"],
                "upstreamTokenEndpoint": PLAIN_OAUTH2["upstreamTokenEndpoint"],
            }}}}),
            ["a plain OAuth 2 upstream provider needs all of", "missing: shoal.auth.oauth.upstreamUserinfoEndpoint"],
        ),
        (
            "oauth with upstreamSubjectField and an issuer (chart guard)",
            merged(OAUTH, {"shoal": {"auth": {"oauth": {"upstreamSubjectField": "id"}}}}),
            ["shoal.auth.oauth.upstreamSubjectField is for a plain OAuth 2 provider"],
        ),
        (
            "oauth with upstreamClientAuth: private_key_jwt (schema: enum)",
            merged(OAUTH, {"shoal": {"auth": {"oauth": {"upstreamClientAuth": "private_key_jwt"}}}}),
            ["/shoal/auth/oauth/upstreamClientAuth"],
        ),
        ("replicaCount 3 on in-memory sessions (chart guard)", {"replicaCount": 3}, ["replicaCount > 1 needs"]),
        ("autoscaling on in-memory sessions (chart guard)", {"autoscaling": {"enabled": True}}, ["autoscaling.enabled needs"]),
    ]
    for label, mistake, expected in rejected:

        def refuse(values: dict[str, Any] = merged(BASE, mistake), expected: list[str] = expected) -> None:
            try:
                render(chart, values)
            except (helm.HelmValuesError, helm.HelmRenderError) as error:
                message = str(error)
                missing = [part for part in expected if part not in message]
                assert not missing, f"the refusal does not name {missing}: {message}"
                print(f"     refused: {' '.join(message.split())[-200:]}")
            else:
                raise AssertionError(f"helm template accepted {values}")

        checks.check(f"helm template refuses {label}", refuse)

    def no_tokens_without_the_schema() -> None:
        # What a render that skips the schema (helm template --skip-schema-validation) meets:
        # the chart without its values.schema.json (helm lint ignores `fail`, so render).
        with tempfile.TemporaryDirectory() as scratch:
            copy = os.path.join(scratch, "shoal")
            shutil.copytree(chart_dir, copy)
            os.remove(os.path.join(copy, "values.schema.json"))
            try:
                render(helm.Chart.load(copy), merged(BASE, no_static_source))
            except helm.HelmRenderError as error:
                message = str(error)
            else:
                raise AssertionError("without the schema, static auth without tokens renders")
        missing = [part for part in NO_TOKENS_GUARD if part not in message]
        assert not missing, f"the chart guard does not name {missing}: {message}"
        print(f"     refused: {' '.join(message.split())[-200:]}")

    checks.check("helm template without the schema refuses static auth without tokens (chart guard)", no_tokens_without_the_schema)

    def lint_refuses() -> None:
        report = helm.lint(chart_dir, {"replicaCount": "three"}, strict=True)
        assert report["errors"], "helm lint accepted replicaCount: three"

    checks.check("helm lint refuses replicaCount: three", lint_refuses)

    def schema_is_strict() -> None:
        schema = chart.schema
        assert schema is not None, "no values.schema.json"
        assert schema.get("$schema") == "http://json-schema.org/draft-07/schema#", schema.get("$schema")
        assert schema.get("additionalProperties") is False
        defaults = chart.values
        assert set(schema["properties"]) >= set(defaults), set(defaults) - set(schema["properties"])

    checks.check("values.schema.json is draft-07 and covers every value", schema_is_strict)

    def readme_in_step() -> None:
        with open(os.path.join(chart_dir, "README.md"), encoding="utf-8") as file:
            readme = file.read()
        missing = [key for key in leaves(chart.values) if f"`{key}`" not in readme]
        assert not missing, f"README.md does not document {missing}"

    checks.check("README.md documents every value of values.yaml", readme_in_step)


def leaves(values: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys of values.yaml, down to the first non-mapping or empty mapping; the free-form
    Kubernetes objects (securityContext, resources, behavior...) count as one key."""
    free_form = {"podSecurityContext", "securityContext", "resources", "redis.resources", "autoscaling.behavior"}
    keys = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and path not in free_form:
            keys.extend(leaves(value, f"{path}."))
        else:
            keys.append(path)
    return keys


def check_kustomize(checks: Checks, repo: str) -> None:
    base = os.path.join(repo, "deploy", "kustomize", "base")

    def base_valid() -> None:
        with open(os.path.join(base, "kustomization.yaml"), encoding="utf-8") as file:
            kustomization = yaml.safe_load(file)
        docs = []
        for resource in kustomization["resources"]:
            with open(os.path.join(base, resource), encoding="utf-8") as file:
                docs.extend(doc for doc in yaml.safe_load_all(file) if doc)
        # The configMapGenerator, as kustomize would make it (without the name's hash).
        for generator in kustomization.get("configMapGenerator", []):
            data = {}
            for env in generator.get("envs", []):
                with open(os.path.join(base, env), encoding="utf-8") as file:
                    for line in file:
                        if line.strip() and not line.startswith("#"):
                            key, _, value = line.rstrip("\n").partition("=")
                            data[key] = value
            docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": generator["name"]}, "data": data})
        chart_docs = render(helm.Chart.load(os.path.join(repo, "helm", "shoal")), BASE)
        chart_defaults = config_of(chart_docs, shoal_deployment(chart_docs))
        base_config = config_of(docs, shoal_deployment(docs))
        namespaced = {"SHOAL_PUBLIC_URL", "SHOAL_ALLOWED_HOSTS"}
        differ = {
            key for key in set(chart_defaults) | set(base_config)
            if key not in namespaced and chart_defaults.get(key) != base_config.get(key)
        }
        assert not differ, f"the base's settings differ from the chart's defaults: {sorted(differ)}"
        validate(docs)
        check_render(docs, {}, helm_chart=False)

    checks.check("deploy/kustomize/base: kubernetes-validate + assertions", base_valid)

    kubectl = shutil.which("kubectl")
    overlays = sorted(glob.glob(os.path.join(repo, "deploy", "kustomize", "overlays", "*")))
    assert overlays, "no deploy/kustomize/overlays"
    for overlay in overlays:
        label = os.path.relpath(overlay, repo)
        if kubectl is None:
            print(f"skip {label}: kubectl (kustomize) is not on PATH")
            continue

        def build(overlay: str = overlay) -> None:
            out = subprocess.run([kubectl, "kustomize", overlay], check=True, capture_output=True, text=True).stdout
            docs = [doc for doc in yaml.safe_load_all(out) if doc]
            validate(docs)
            check_render(docs, {}, helm_chart=False)
            deployment = shoal_deployment(docs)
            config = config_of(docs, deployment)
            if os.path.basename(overlay) == "redis":
                assert deployment["spec"]["replicas"] == 3, "the redis overlay runs 3 replicas"
                ref = env_of(deployment["spec"]["template"]["spec"]["containers"][0])["SHOAL_SESSION_HOST"]
                assert ref["valueFrom"]["secretKeyRef"]["name"] == "shoal-redis", ref
                assert not any(doc["kind"] == "Secret" and doc["metadata"]["name"] == "shoal-redis" for doc in docs)
            else:
                assert deployment["spec"].get("replicas", 1) == 1 and "SHOAL_SESSION_HOST" not in config

        checks.check(f"kubectl kustomize {label}: kubernetes-validate + assertions", build)


# The workspace root (set by main).
REPO = "."

# Files the chart ships that must equal their deploy/ originals (a chart cannot read outside
# its directory, so it holds copies).
COPIES = {
    "deploy/prometheus/shoal-alerts.yaml": "helm/shoal/files/shoal-alerts.yaml",
    "deploy/grafana/shoal-dashboard.json": "helm/shoal/files/shoal-dashboard.json",
}


def check_copies(repo: str) -> None:
    for original, copy in COPIES.items():
        with open(os.path.join(repo, original), "rb") as a, open(os.path.join(repo, copy), "rb") as b:
            assert a.read() == b.read(), f"{copy} differs from {original}: cp {original} {copy}"
        print(f"     {copy} == {original}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    args = parser.parse_args()
    print(f"helm-python-sdk {helm.__version__} (Helm SDK {helm.helm_sdk_version()}), "
          f"kubernetes-validate schemas for {', '.join(KUBE_VERSIONS)}")
    checks = Checks()
    global REPO
    REPO = args.repo
    checks.check("observability copies", lambda: check_copies(args.repo))
    checks.check("chart", lambda: check_chart(checks, args.repo))
    checks.check("kustomize", lambda: check_kustomize(checks, args.repo))
    print(f"chart: {checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
