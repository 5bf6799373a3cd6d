#!/usr/bin/env python3
# Demo driver (see scripts/demo): boots the guest under TCG with
# mktme-guest, talks QMP, and compares the KeyID-0 view of guest memory
# (pmemsave) with the DRAM view (x-mktme-dram-save).
import json, os, socket, subprocess, sys, tempfile, time

qemu, guest, extra = sys.argv[1], sys.argv[2], sys.argv[3]
tmp = tempfile.mkdtemp(prefix="mktme-demo-")
qmp_path, serial = os.path.join(tmp, "qmp.sock"), os.path.join(tmp, "serial.log")
# The default shows TME-MK to the guest too; extra properties override.
props = "mktme-guest,id=k0,guest-visible=on" + ("," + extra if extra else "")
argv = [qemu, "-machine", "q35,memory-encryption=k0", "-accel", "tcg",
        "-cpu", "max,vendor=GenuineIntel,phys-bits=46",
        "-m", "512M", "-nodefaults", "-display", "none",
        "-object", props,
        "-kernel", os.path.join(guest, "vmlinuz"),
        "-initrd", os.path.join(guest, "initramfs.cpio.gz"),
        "-append", "console=ttyS0 nokaslr mktme.demo",
        "-serial", "file:" + serial, "-qmp", "unix:%s,server=on,wait=off" % qmp_path]
print("$ " + " ".join(argv[:11]) + " ...")
proc = subprocess.Popen(argv)


class QMP:
    def __init__(self, path):
        for _ in range(100):
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                if proc.poll() is not None:
                    sys.exit("QEMU exited with status %d" % proc.returncode)
                time.sleep(0.1)
        self.f = self.s.makefile("rw")
        json.loads(self.f.readline())
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "return" in r:
                return r["return"]
            if "error" in r:
                raise RuntimeError(r["error"]["desc"])


def show(title, value):
    print("\n== " + title)
    print(value if isinstance(value, str) else json.dumps(value, indent=2))


try:
    qmp = QMP(qmp_path)
    deadline = time.time() + 300
    while "GUEST-REPORT-END" not in open(serial, errors="replace").read():
        if time.time() > deadline or proc.poll() is not None:
            sys.exit("the guest did not boot; console in " + serial)
        time.sleep(0.5)
    report = open(serial, errors="replace").read().split("GUEST-REPORT-BEGIN")[1]
    show("guest report (the guest's own dmesg and /proc/cpuinfo)",
         report.split("GUEST-REPORT-END")[0].strip())
    show("query-mktme", qmp.cmd("query-mktme"))
    show("query-mktme-capabilities", qmp.cmd("query-mktme-capabilities"))
    show("info mktme", qmp.cmd("human-monitor-command", **{"command-line": "info mktme"}))

    # The kernel image sits at 16 MiB (nokaslr): compare the two views.
    qmp.cmd("stop")
    base, size = 0x1000000, 0x2000000
    plain, dram = os.path.join(tmp, "keyid0.bin"), os.path.join(tmp, "dram.bin")
    qmp.cmd("pmemsave", val=base, size=size, filename=plain)
    qmp.cmd("x-mktme-dram-save", val=base, size=size, filename=dram)
    needle = b"Linux version"
    p, d = open(plain, "rb").read(), open(dram, "rb").read()
    show("guest memory at 16-48 MiB, as the guest and hypervisor read it "
         "(KeyID 0, pmemsave) and as the DRAM holds it (x-mktme-dram-save)",
         "%r found %d times in the KeyID-0 view, %d times in the DRAM view;\n"
         "%.1f%% of the DRAM view's bytes equal the KeyID-0 view's"
         % (needle.decode(), p.count(needle), d.count(needle),
            100.0 * sum(a == b for a, b in zip(p[:1 << 20], d[:1 << 20])) / (1 << 20)))
    qmp.cmd("quit")
    proc.wait(30)
finally:
    if proc.poll() is None:
        proc.kill()
