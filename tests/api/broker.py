"""
broker.py - a real mosquitto broker on a free loopback port, and a
mosquitto_sub recorder, for the MQTT tests (notifications and ingest).
The Debian packages mosquitto and mosquitto-clients are required
(scripts/install-deps.sh installs them): missing ones fail, never skip.
"""
import os
import shutil
import socket
import subprocess
import tempfile
import time

from helpers import SLOW


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


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
