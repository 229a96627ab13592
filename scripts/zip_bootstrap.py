"""Packs a Lambda bootstrap into a zip the same way every time (scripts/release;
tests/release checks that packing the shipped bootstrap again gives the
shipped zip): one entry, `bootstrap`, executable, with a fixed time."""

import sys
import zipfile


def pack(bootstrap, out):
    entry = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
    entry.create_system = 3                  # Unix, so that the mode below is read
    entry.external_attr = 0o100755 << 16     # a regular file, executable: Lambda runs it
    entry.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(out, "w") as z, open(bootstrap, "rb") as f:
        z.writestr(entry, f.read(), compresslevel=9)


if __name__ == "__main__":
    pack(*sys.argv[1:])
