"""A real SMTP server for Veil's alert-email tests: accepts every message on 127.0.0.1:PORT and writes each one,
as received, to OUT_DIR/<n>.eml (written to a temporary name first, then renamed, so readers never see half a
message). Prints "ready" on standard output once it accepts connections, and exits when standard input closes
(the test that started it ended).

Usage: python3 smtp_sink.py PORT OUT_DIR
"""

import os
import sys
import threading

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
            number = self.count
        path = os.path.join(self.out_dir, f"{number}.eml")
        with open(path + ".part", "wb") as handle:
            handle.write(envelope.original_content or envelope.content)
        os.rename(path + ".part", path)
        return "250 Message accepted for delivery"


def main():
    port = int(sys.argv[1])
    out_dir = sys.argv[2]
    controller = Controller(Sink(out_dir), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
