"""A real Label Studio server for the annotation tests (started once per session), a local
OpenAI-compatible endpoint, and a flaky proxy for fault tests."""
from __future__ import annotations

import http.server
import json
import os
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port, missing_service, served

REPO = Path(__file__).resolve().parents[2]
ADMIN_EMAIL = "lead@medcurate.test"
ADMIN_TOKEN = "medcurate-test-token-0123456789abcdef"


def label_studio_binary() -> Path | None:
    configured = os.environ.get("MEDCURATE_LABEL_STUDIO_BIN")
    if configured:
        return Path(configured)
    local = REPO / ".lsvenv" / "bin" / "label-studio"
    return local if local.exists() else None


def _server_env(data_dir: Path, port: int) -> dict[str, str]:
    """A clean environment: Label Studio also reads bare names such as USERNAME or PORT."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("LABEL_STUDIO_", "HEARTEX_"))
           and key not in {"USERNAME", "PASSWORD", "PORT", "HOST", "USER_TOKEN", "BASE_DATA_DIR"}}
    env.update({
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LABEL_STUDIO_USERNAME": ADMIN_EMAIL,
        "LABEL_STUDIO_PASSWORD": "medcurate-test-password",
        "LABEL_STUDIO_USER_TOKEN": ADMIN_TOKEN,
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
    })
    return env


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):
    """(url, token) of a fresh Label Studio on a free loopback port; stopped by its pid at the end."""
    binary = label_studio_binary()
    if binary is None:
        missing_service("Label Studio not installed: set MEDCURATE_LABEL_STUDIO_BIN or run `make label-studio` "
                 "(it needs its own venv, see ../shared/STACK.md)")
    if not binary.exists():
        missing_service(f"MEDCURATE_LABEL_STUDIO_BIN points at a missing file: {binary}")
    data_dir = tmp_path_factory.mktemp("label-studio")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(binary), "start", "--internal-host", "127.0.0.1", "--port", str(port), "--no-browser"]
    try:
        with served(command, url, data_dir / "server.log", name="Label Studio", timeout=180,
                    env=_server_env(data_dir, port), cwd=data_dir):
            yield url, ADMIN_TOKEN
    finally:
        shutil.rmtree(data_dir / "media", ignore_errors=True)


class _Threaded(http.server.ThreadingHTTPServer):
    daemon_threads = True


def _serve(handler_class) -> tuple[_Threaded, str]:
    server = _Threaded(("127.0.0.1", 0), handler_class)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class LocalChatCompletionsHandler(http.server.BaseHTTPRequestHandler):
    """A local OpenAI-compatible chat endpoint: judge prompts get a fixed SPF verdict, others an answer that depends
    on the seed, except prompts containing 复读 (echo), whose answers are identical."""

    requests: list[dict] = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        if self.path.rstrip("/") != "/v1/chat/completions":
            self.send_error(404)
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        LocalChatCompletionsHandler.requests.append(body)
        text = body["messages"][-1]["content"]
        if "Output JSON only" in text:
            if '"acceptability"' in text:
                content = '{"acceptability": "acceptable"}'
            elif '"order"' in text:
                content = "not json"
            else:
                content = 'Verdict: {"safety": "A", "professionalism": "tie", "fluency": "B", "overall": "A"}'
        elif "复读" in text:
            content = "请多休息，多喝水，如果症状持续请及时就医。"
        else:
            seed = body.get("seed", 0)
            content = f"回答{seed}：" + ["建议尽快到医院做血常规检查。", "可以先观察两天，注意体温变化。",
                                       "请描述一下还有哪些症状？"][seed % 3]
        payload = {"id": "chatcmpl-test", "object": "chat.completion", "created": 0, "model": body["model"],
                   "choices": [{"index": 0, "finish_reason": "stop",
                                "message": {"role": "assistant", "content": content}}],
                   "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="session")
def openai_endpoint():
    """Base URL (…/v1) of a local OpenAI-compatible chat endpoint."""
    server, url = _serve(LocalChatCompletionsHandler)
    yield f"{url}/v1"
    server.shutdown()


class FlakyProxy:
    """Forwards to Label Studio, but answers 503 for the requests whose 1-based numbers are in
    ``fail`` (or for every request after ``fail_after``)."""

    def __init__(self, target: str):
        self.target = target
        self.count = 0
        self.fail: set[int] = set()
        self.fail_after: int | None = None
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self):
                proxy.count += 1
                number = proxy.count
                if number in proxy.fail or (proxy.fail_after is not None and number > proxy.fail_after):
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "content-length"}}
                request = urllib.request.Request(proxy.target + self.path, data=body, headers=headers,
                                                 method=self.command)
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        status, data, content_type = response.status, response.read(), response.headers.get("Content-Type")
                except urllib.error.HTTPError as error:
                    status, data, content_type = error.code, error.read(), error.headers.get("Content-Type")
                self.send_response(status)
                self.send_header("Content-Type", content_type or "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _forward

        self.server, self.url = _serve(Handler)

    def reset(self):
        self.count = 0
        self.fail = set()
        self.fail_after = None


@pytest.fixture
def flaky_proxy(label_studio):
    proxy = FlakyProxy(label_studio[0])
    yield proxy
    proxy.server.shutdown()


ANNOTATOR_EMAILS = ("alice@medcurate.test", "bob@medcurate.test", "expert@medcurate.test")


def sign_up(url: str, email: str, password: str) -> str:
    """Register a person the way annotators join (the sign-up form, then their own API token)."""
    import httpx

    with httpx.Client(base_url=url, follow_redirects=True, timeout=30) as session:
        session.get("/user/signup/")
        response = session.post("/user/signup/", data={"email": email, "password": password,
                                                        "csrfmiddlewaretoken": session.cookies.get("csrftoken")},
                                headers={"Referer": f"{url}/user/signup/"})
        response.raise_for_status()
        token = session.get("/api/current-user/token")
        token.raise_for_status()
        return token.json()["token"]


@pytest.fixture(scope="session")
def annotator_tokens(label_studio) -> dict[str, str]:
    """alice, bob and the expert, each with an account and an API token of their own."""
    url, _ = label_studio
    return {email: sign_up(url, email, "annotator-pass-2026") for email in ANNOTATOR_EMAILS}
