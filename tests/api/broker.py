"""
broker.py - a real mosquitto broker on a free loopback port, and a
mosquitto_sub recorder (MqttSink: every message as one "topic payload" line
in a file), for the MQTT tests (notifications and ingest).
The Debian packages mosquitto and mosquitto-clients are required
(scripts/install-deps.sh installs them): missing ones fail, never skip.
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

from conftest import free_port
from helpers import SLOW


class Broker:
    def __init__(self, port=None):
        self.dir = tempfile.mkdtemp(prefix="pl-mqtt-")
        self.port = port or free_port()
        self.proc = None
        self.start()

    def start(self):
        conf = os.path.join(self.dir, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write("listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
                    % self.port)
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([exe, "-c", conf], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10 * SLOW
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("mosquitto did not start on port %d" % self.port)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def publish(self, topic, payload, qos=1):
        """Publish one message with mosquitto_pub (payload: str or bytes)."""
        if isinstance(payload, str):
            payload = payload.encode()
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(self.port), "-q", str(qos),
                        "-t", topic, "-s"], input=payload, check=True, timeout=10 * SLOW)


class MqttSink:
    """mosquitto_sub on topic (and a probe topic, to know it is subscribed)."""

    def __init__(self, broker, topic):
        self.path = os.path.join(broker.dir, "sub-%d.txt" % free_port())
        self.out = open(self.path, "w")
        self.broker = broker
        self.proc = subprocess.Popen(
            ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-v",
             "-t", topic, "-t", "pl-probe/#"], stdout=self.out, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10 * SLOW
        while time.monotonic() < deadline:
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port),
                            "-t", "pl-probe/x", "-m", "probe"], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if any(t.startswith("pl-probe/") for t, _ in self.lines()):
                return
            time.sleep(0.1)
        raise AssertionError("mosquitto_sub did not subscribe")

    def lines(self):
        out = []
        with open(self.path) as f:
            text = f.read()
        # a line mosquitto_sub is still writing is not a message yet
        text = text[:text.rfind("\n") + 1]
        for line in text.splitlines():
            topic, _, payload = line.partition(" ")
            out.append((topic, payload))
        return out

    def messages(self):
        return [(t, json.loads(p)) for t, p in self.lines() if not t.startswith("pl-probe/")]

    def wait(self, n, timeout=10 * SLOW):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.messages()) >= n:
                return self.messages()
            time.sleep(0.02)
        raise AssertionError("expected %d MQTT messages, got %r" % (n, self.messages()))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.out.close()
