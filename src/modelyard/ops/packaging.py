"""``modelyard package``: a build context that serves one model version in a container.

Layout of the context folder::

    Dockerfile                 python:3.11-slim, non-root (uid 10001), HEALTHCHECK on /health
    .dockerignore
    requirements.txt           pinned: the server (fastapi, uvicorn, prometheus-client, ...)
                               plus exactly what the model needs to load (its requirements.txt)
    serve.json                 server settings (model folder, prediction log, limits, the
                               declared validation.checks requests must pass)
    model/                     the MLflow model folder with contract.yaml, + modelyard-serving.json
    modelyard/                 the modelyard package (serving code; installed without its
                               training dependencies)
    k8s/deployment.yaml        Deployment: readiness /ready, liveness /health, resources
    k8s/service.yaml           Service (port 80 -> 8080)
    k8s/hpa.yaml               HorizontalPodAutoscaler (autoscaling/v2, CPU)
    k8s/servicemonitor.yaml    Prometheus-operator ServiceMonitor (only with service_monitor)
    .github/workflows/image.yml  builds and pushes the image to ghcr.io
    README.md

The container runs ``python -m uvicorn --factory modelyard.ops.serving.app:create_app_from_env``
with ``MODELYARD_SERVE_SETTINGS_FILE=/app/serve.json``; the bearer token, when wanted, comes from
the ``MODELYARD_SERVING_TOKEN`` environment variable (a Kubernetes Secret).
"""

from __future__ import annotations

import importlib.metadata as md
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelyard.errors import ModelyardError

SERVER_REQUIREMENTS = (
    "fastapi",
    "fastapi-swagger",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "prometheus-client",
    "pydantic",
    "pydantic-core",
    "pyyaml",
    "polars",
    "threadpoolctl",
)
"""What the serving code imports (polars and pyyaml: the data contract module;
fastapi-swagger: the assets of /docs)."""
PORT = 8080
UID = 10001


@dataclass(frozen=True)
class PackageResult:
    out: Path
    image: str
    files: list[str]


def _pin(name: str) -> str:
    try:
        return f"{name}=={md.version(name)}"
    except md.PackageNotFoundError:
        raise ModelyardError(
            f"the package '{name}' that serving needs is not installed",
            where="modelyard package",
            fix="Install the serving extra: pip install 'modelyard[serve]'.",
        ) from None


def _model_requirements(model_dir: Path) -> list[str]:
    req = model_dir / "requirements.txt"
    out: list[str] = []
    if req.is_file():
        for raw in req.read_text(encoding="utf-8").splitlines():
            line = raw.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                out.append(line)
    return out


def requirements(model_dir: Path) -> list[str]:
    """Pinned requirements: the server's, then the model's (pinned to what is installed)."""
    reqs: dict[str, str] = {}
    for line in _model_requirements(model_dir):
        name = re.split(r"[=<>!~;\[ ]", line, maxsplit=1)[0].strip()
        reqs[name.lower()] = line if "==" in line else _pin(name)
    for name in SERVER_REQUIREMENTS:
        reqs.setdefault(name.lower(), _pin(name))
    return [reqs[k] for k in sorted(reqs)]


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return slug[:50] or "model"


def dockerfile() -> str:
    return f"""\
# Built by modelyard package: serves one model version.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PIP_NO_CACHE_DIR=1 \\
    PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    OMP_NUM_THREADS=1 \\
    PYTHONPATH=/app \\
    MODELYARD_SERVE_SETTINGS_FILE=/app/serve.json

WORKDIR /app

COPY requirements.txt /app/requirements.txt
RUN pip install --no-cache-dir -r /app/requirements.txt

COPY modelyard/ /app/modelyard/
COPY model/ /app/model/
COPY serve.json /app/serve.json

RUN useradd --system --uid {UID} --no-create-home --shell /usr/sbin/nologin modelyard \\
    && mkdir -p /app/prediction-log /app/cache \\
    && chown -R {UID}:{UID} /app/prediction-log /app/cache

USER {UID}
EXPOSE {PORT}

HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \\
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{PORT}/health', timeout=2)"]

CMD ["python", "-m", "uvicorn", "--factory", "modelyard.ops.serving.app:create_app_from_env", "--host", "0.0.0.0", "--port", "{PORT}", "--no-access-log", "--timeout-graceful-shutdown", "25"]
"""


def _deployment(app: str, image: str, replicas: int) -> str:
    return f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
  labels:
    app.kubernetes.io/name: {app}
    app.kubernetes.io/part-of: modelyard
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app.kubernetes.io/name: {app}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {app}
        app.kubernetes.io/part-of: modelyard
    spec:
      terminationGracePeriodSeconds: 30
      securityContext:
        runAsNonRoot: true
        runAsUser: {UID}
        runAsGroup: {UID}
        fsGroup: {UID}
      containers:
        - name: server
          image: {image}
          imagePullPolicy: IfNotPresent
          ports:
            - name: http
              containerPort: {PORT}
              protocol: TCP
          env:
            - name: MODELYARD_SERVING_TOKEN
              valueFrom:
                secretKeyRef:
                  name: {app}-token
                  key: token
                  optional: true
          readinessProbe:
            httpGet:
              path: /ready
              port: http
            initialDelaySeconds: 5
            periodSeconds: 5
            failureThreshold: 3
          livenessProbe:
            httpGet:
              path: /health
              port: http
            initialDelaySeconds: 15
            periodSeconds: 10
            failureThreshold: 3
          startupProbe:
            httpGet:
              path: /ready
              port: http
            periodSeconds: 2
            failureThreshold: 60
          resources:
            requests:
              cpu: 500m
              memory: 512Mi
            limits:
              cpu: "1"
              memory: 1Gi
          securityContext:
            allowPrivilegeEscalation: false
            capabilities:
              drop: ["ALL"]
          volumeMounts:
            - name: prediction-log
              mountPath: /app/prediction-log
            - name: cache
              mountPath: /app/cache
      volumes:
        - name: prediction-log
          emptyDir: {{}}
        - name: cache
          emptyDir: {{}}
"""


def _service(app: str) -> str:
    return f"""\
apiVersion: v1
kind: Service
metadata:
  name: {app}
  labels:
    app.kubernetes.io/name: {app}
    app.kubernetes.io/part-of: modelyard
spec:
  type: ClusterIP
  selector:
    app.kubernetes.io/name: {app}
  ports:
    - name: http
      port: 80
      targetPort: http
      protocol: TCP
"""


def _hpa(app: str, min_replicas: int, max_replicas: int) -> str:
    return f"""\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {app}
  labels:
    app.kubernetes.io/name: {app}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {app}
  minReplicas: {min_replicas}
  maxReplicas: {max_replicas}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 70
"""


def _service_monitor(app: str) -> str:
    return f"""\
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {app}
  labels:
    app.kubernetes.io/name: {app}
spec:
  selector:
    matchLabels:
      app.kubernetes.io/name: {app}
  endpoints:
    - port: http
      path: /metrics
      interval: 15s
"""


def _workflow(app: str) -> str:
    return f"""\
name: image

on:
  push:
    branches: [main]
    tags: ["v*"]
  workflow_dispatch:

permissions:
  contents: read
  packages: write

jobs:
  build-and-push:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: docker/setup-buildx-action@v3
      - uses: docker/login-action@v3
        with:
          registry: ghcr.io
          username: ${{{{ github.actor }}}}
          password: ${{{{ secrets.GITHUB_TOKEN }}}}
      - id: meta
        uses: docker/metadata-action@v5
        with:
          images: ghcr.io/${{{{ github.repository_owner }}}}/{app}
          tags: |
            type=sha
            type=ref,event=tag
            type=raw,value=latest,enable={{{{is_default_branch}}}}
      - uses: docker/build-push-action@v6
        with:
          context: .
          push: true
          tags: ${{{{ steps.meta.outputs.tags }}}}
          labels: ${{{{ steps.meta.outputs.labels }}}}
"""


def package(
    model_dir: Path,
    out: Path,
    *,
    name: str,
    version: str,
    facts: dict[str, object] | None = None,
    image: str | None = None,
    service_monitor: bool = True,
    replicas: int = 2,
    max_replicas: int = 10,
    lenient: bool = False,
    max_body_bytes: int = 1_048_576,
    max_batch_rows: int = 10_000,
    checks: list[dict[str, Any]] | None = None,
) -> PackageResult:
    """Write the build context for the model in ``model_dir`` (an MLflow model folder);
    ``checks`` are the declared ``validation.checks`` (JSON) the server applies to requests."""
    model_dir = Path(model_dir)
    if not (model_dir / "MLmodel").is_file():
        raise ModelyardError(
            "not an MLflow model folder", where=str(model_dir), expected="a folder with MLmodel"
        )
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ModelyardError(
            "the output folder is not empty",
            where=str(out),
            fix="Choose a new folder with --out, or empty this one.",
        )
    out.mkdir(parents=True, exist_ok=True)
    app = _slug(f"{name}-model")
    image = image or f"ghcr.io/OWNER/{app}:{version}"

    shutil.copytree(model_dir, out / "model", ignore=shutil.ignore_patterns("__pycache__"))
    for stray in ("pyproject.toml", "uv.lock", ".python-version"):
        (out / "model" / stray).unlink(missing_ok=True)
    meta = {"name": name, "version": version, **(facts or {})}
    (out / "model" / "modelyard-serving.json").write_text(
        json.dumps(meta, indent=2, default=str), encoding="utf-8"
    )
    src = Path(__file__).resolve().parents[1]  # the modelyard package
    shutil.copytree(
        src, out / "modelyard", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "py.typed")
    )
    (out / "requirements.txt").write_text(
        "# Pinned by modelyard package: the server, then what the model needs to load.\n"
        + "\n".join(requirements(model_dir))
        + "\n",
        encoding="utf-8",
    )
    settings = {
        "model": "model",
        "tracking_uri": None,
        "lenient": lenient,
        "max_body_bytes": max_body_bytes,
        "max_batch_rows": max_batch_rows,
        "max_concurrency": 256,
        "log_path": "prediction-log",
        "poll_seconds": 0,
        "cache_dir": "cache",
        "checks": list(checks or []),
    }
    (out / "serve.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    (out / "Dockerfile").write_text(dockerfile(), encoding="utf-8")
    (out / ".dockerignore").write_text(
        "**/__pycache__\n**/*.pyc\nprediction-log/\ncache/\n.venv/\n", encoding="utf-8"
    )
    k8s = out / "k8s"
    k8s.mkdir()
    (k8s / "deployment.yaml").write_text(_deployment(app, image, replicas), encoding="utf-8")
    (k8s / "service.yaml").write_text(_service(app), encoding="utf-8")
    (k8s / "hpa.yaml").write_text(_hpa(app, replicas, max_replicas), encoding="utf-8")
    if service_monitor:
        (k8s / "servicemonitor.yaml").write_text(_service_monitor(app), encoding="utf-8")
    wf = out / ".github" / "workflows"
    wf.mkdir(parents=True)
    (wf / "image.yml").write_text(_workflow(app), encoding="utf-8")
    (out / "README.md").write_text(
        f"""# {name} version {version}: prediction server

Built by `modelyard package`.

    docker build -t {image} .
    docker run --rm -p {PORT}:{PORT} {image}
    curl -s localhost:{PORT}/ready
    kubectl apply -f k8s/

Routes: POST /predict, GET /health, /ready, /metrics, /model, POST /feedback,
SageMaker GET /ping and POST /invocations. Set MODELYARD_SERVING_TOKEN to require a
bearer token (in Kubernetes: the optional Secret `{app}-token`, key `token`).
""",
        encoding="utf-8",
    )
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    return PackageResult(out=out, image=image, files=files)
