"""The baseline for bench/http_load.py: a trivial Flask JSON endpoint, served by the same
gunicorn settings as the service."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/ping")
def ping():
    return jsonify(status="ok")
