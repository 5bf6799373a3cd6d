#!/usr/bin/python3
# Helpers of tests/libvirt/run.
#
#   helper.py domxml DOC NAME QEMU KERNEL INITRD CMDLINE [VARIANT...]
#       The domain XML of docs/libvirt.md whose <name> is NAME, as the
#       document shows it, with the emulator replaced by QEMU and the disk
#       by direct kernel boot (<kernel>, <initrd>, <cmdline> instead of
#       <disk> and <boot dev=...>); nothing else changes.  VARIANTs are
#       the changes the document itself describes, each spelled out here:
#         policy=required  policy=if-supported -> policy=required
#         invisible        drop guest-visible=on,keyid-bits=6 and the two
#                          -global pairs ("Drop ... to have the emulated
#                          controller encrypt ... without the guest seeing
#                          TME-MK")
#         no-cpu           drop <cpu> (QEMU's default CPU model), for a
#                          host whose KVM cannot run host-passthrough
#   helper.py json-get PATH       stdin: a QMP reply; prints the member at
#       PATH (dot-separated, from "return"), JSON-encoded; "<absent>" if
#       there is none
#   helper.py savefile FILE       the TME-MK state in a libvirt save image
#       (a QEMU migration stream behind libvirt's header): prints the VM
#       key's length and whether it is all zero (never its bytes),
#       IA32_TME_ACTIVATE, the exclusion MSRs and the key table by mode
#   helper.py same-key FILE1 FILE2   "same" if both save images hold the
#       same VM key and key table, "different" otherwise
#   helper.py decrypt FILE PA DRAM PLAIN   decrypts DRAM (x-mktme-dram-save
#       at guest physical address PA) with the VM key found in save image
#       FILE and prints how many 64-byte lines equal PLAIN (pmemsave)
import json
import re
import sys
import xml.etree.ElementTree as ET

QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"


def domxml(doc, name, qemu, kernel, initrd, cmdline, *variants):
    md = open(doc).read()
    blocks = re.findall(r"^```xml\n(.*?)^```$", md, re.S | re.M)
    found = [b for b in blocks if ET.fromstring(b).findtext("name") == name]
    if len(found) != 1:
        sys.exit("%s: %d XML blocks for domain %s, not 1" % (doc, len(found), name))
    ET.register_namespace("qemu", QEMU_NS)
    dom = ET.fromstring(found[0])
    dom.find("devices/emulator").text = qemu
    devices, os_ = dom.find("devices"), dom.find("os")
    disks = devices.findall("disk")
    if len(disks) != 1:
        sys.exit("%s: domain %s has %d disks, not 1" % (doc, name, len(disks)))
    devices.remove(disks[0])
    for b in os_.findall("boot"):
        os_.remove(b)
    for tag, text in (("kernel", kernel), ("initrd", initrd), ("cmdline", cmdline)):
        ET.SubElement(os_, tag).text = text
    cl = dom.find("{%s}commandline" % QEMU_NS)
    args = cl.findall("{%s}arg" % QEMU_NS)
    for v in variants:
        if v == "policy=required":
            hits = [a for a in args if "policy=if-supported" in a.get("value")]
            if len(hits) != 1:
                sys.exit("no policy=if-supported in domain %s" % name)
            hits[0].set("value", hits[0].get("value").replace(
                "policy=if-supported", "policy=required"))
        elif v == "invisible":
            obj = [a for a in args if a.get("value").startswith("mktme-guest,")]
            if len(obj) != 1 or ",guest-visible=on,keyid-bits=6" not in obj[0].get("value"):
                sys.exit("no guest-visible=on,keyid-bits=6 in domain %s" % name)
            obj[0].set("value", obj[0].get("value").replace(",guest-visible=on,keyid-bits=6", ""))
            glob = [i for i, a in enumerate(args) if a.get("value") == "-global"]
            if len(glob) != 2:
                sys.exit("domain %s has %d -global, not 2" % (name, len(glob)))
            for i in glob:
                cl.remove(args[i])
                cl.remove(args[i + 1])
        elif v == "no-cpu":
            dom.remove(dom.find("cpu"))
        else:
            sys.exit("unknown variant " + v)
    print(ET.tostring(dom, encoding="unicode"))


def json_get(path):
    v = json.load(sys.stdin)["return"]
    for p in path.split(".") if path else []:
        if isinstance(v, dict) and p in v:
            v = v[p]
        else:
            print("<absent>")
            return
    print(json.dumps(v))


def be(b):
    return int.from_bytes(b, "big")


def parse_save(path):
    """The mktme-guest section of the migration stream in a libvirt save
    image: VMSTATE_UINT32_EQUAL(key_len), VMSTATE_UINT8_ARRAY(vm_key, 64),
    then subsection mktme-guest/platform: phys_bits, max_keyid_bits,
    nr_entries (u32), activate, exclude_mask, exclude_base (u64), and
    nr_entries entries of mode, alg (u8), data_key[32], tweak_key[32]
    (target/i386/mktme/mktme-guest-setup.c)."""
    d = open(path, "rb").read()
    if not d.startswith(b"LibvirtQemudSave"):
        sys.exit("%s: not a libvirt save image" % path)
    # QEMU_VM_SECTION_FULL, section id, the id string, instance, version
    m = list(re.finditer(rb"\x04....\x0bmktme-guest\x00\x00\x00\x00\x00\x00\x00\x01", d, re.S))
    if len(m) != 1:
        sys.exit("%s: %d mktme-guest sections, not 1" % (path, len(m)))
    p = m[0].end()
    s = {"key_len": be(d[p:p + 4]), "vm_key": d[p + 4:p + 68]}
    p += 68
    sub = b"\x05\x14mktme-guest/platform\x00\x00\x00\x01"
    if d[p:p + len(sub)] == sub:
        p += len(sub)
        s["phys_bits"], s["keyid_bits"], n = (be(d[p:p + 4]), be(d[p + 4:p + 8]),
                                              be(d[p + 8:p + 12]))
        p += 12
        s["activate"], s["exclude_mask"], s["exclude_base"] = (
            be(d[p:p + 8]), be(d[p + 8:p + 16]), be(d[p + 16:p + 24]))
        p += 24
        s["keys"] = [d[p + 66 * i:p + 66 * (i + 1)] for i in range(n)]
        p += 66 * n
    if d[p:p + 1] != b"\x7e":       # QEMU_VM_SECTION_FOOTER
        sys.exit("%s: the mktme-guest section does not end where expected" % path)
    return s


def savefile(path):
    s = parse_save(path)
    print("vm-key %d bytes%s" % (s["key_len"],
                                 ", all zero" if not any(s["vm_key"]) else ""))
    if "keys" not in s:
        print("platform absent")
        return
    print("platform phys-bits %d keyid-bits %d entries %d"
          % (s["phys_bits"], s["keyid_bits"], len(s["keys"])))
    print("activate 0x%016x exclude-mask 0x%x exclude-base 0x%x"
          % (s["activate"], s["exclude_mask"], s["exclude_base"]))
    modes = {0: "tme", 1: "encrypt", 2: "no-encrypt"}
    count = {}
    for k in s["keys"][1:]:         # [0] is unused: KeyID 0 has the VM key
        what = modes.get(k[0], "mode-%d" % k[0])
        if what == "encrypt":
            what += "-aes-xts-%d" % (128 if k[1] == 0 else 256)
        if not any(k[2:]):
            what += "-zero"
        count[what] = count.get(what, 0) + 1
    print("keyids " + " ".join("%s:%d" % kv for kv in sorted(count.items())))


def same_key(f1, f2):
    a, b = parse_save(f1), parse_save(f2)
    same = all(a.get(k) == b.get(k) for k in
               ("key_len", "vm_key", "activate", "exclude_mask", "exclude_base", "keys"))
    print("same" if same else "different")


def decrypt(path, pa, dram, plain):
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    s = parse_save(path)
    # The VM key is the data key then the tweak key, as AES-XTS keys are
    # (32 bytes for AES-XTS-128, 64 for AES-XTS-256)
    key = s["vm_key"][:s["key_len"]]
    d, p = open(dram, "rb").read(), open(plain, "rb").read()
    pa = int(pa, 0)
    good = 0
    for off in range(0, min(len(d), len(p)) // 64 * 64, 64):
        tweak = (pa + off).to_bytes(16, "little")
        dec = Cipher(algorithms.AES(key), modes.XTS(tweak)).decryptor()
        good += dec.update(d[off:off + 64]) + dec.finalize() == p[off:off + 64]
    print("%d of %d lines" % (good, len(d) // 64))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"domxml": domxml, "json-get": json_get, "savefile": savefile,
     "same-key": same_key, "decrypt": decrypt}[cmd](*args)
