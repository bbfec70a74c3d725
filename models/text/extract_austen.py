#!/usr/bin/python3
"""Extract the six Jane Austen novels shipped by the Debian package
r-cran-janeaustenr into plain UTF-8 text files (one per novel).

The package stores its data as an R lazy-load database (data/Rdata.rdx +
data/Rdata.rdb).  This script decodes it without R:

* ``Rdata.rdx`` is a gzip-compressed RDS file: an R list with element
  ``variables`` mapping each object name to (offset, length) in the .rdb.
* each ``.rdb`` entry is a 4-byte big-endian uncompressed length followed by
  zlib data (other compression types are marked by a type byte: 'Z' = bzip2,
  '2' = none, 'X' = xz).  The payload is R's serialization format (XDR).
* each novel is a character vector (STRSXP of CHARSXP), one element per line.

Usage:  /usr/bin/python3 models/text/extract_austen.py [--pkgdir DIR] [--out DIR]
"""
import argparse
import bz2
import glob
import gzip
import lzma
import os
import struct
import sys
import zlib

NOVELS = {
    "emma": "emma.txt",
    "persuasion": "persuasion.txt",
    "prideprejudice": "pride_and_prejudice.txt",
    "sensesensibility": "sense_and_sensibility.txt",
    "mansfieldpark": "mansfield_park.txt",
    "northangerabbey": "northanger_abbey.txt",
}

# SEXP types
NILSXP, SYMSXP, LISTSXP, CLOSXP, ENVSXP, PROMSXP, LANGSXP = 0, 1, 2, 3, 4, 5, 6
SPECIALSXP, BUILTINSXP, CHARSXP, LGLSXP = 7, 8, 9, 10
INTSXP, REALSXP, CPLXSXP, STRSXP, DOTSXP = 13, 14, 15, 16, 17
VECSXP, EXPRSXP, BCODESXP, EXTPTRSXP, WEAKREFSXP, RAWSXP, S4SXP = 19, 20, 21, 22, 23, 24, 25
# pseudo types used only by the serializer
REFSXP, NILVALUE_SXP, GLOBALENV_SXP, UNBOUNDVALUE_SXP = 255, 254, 253, 252
MISSINGARG_SXP, BASENAMESPACE_SXP, NAMESPACESXP, PACKAGESXP = 251, 250, 249, 248
PERSISTSXP, EMPTYENV_SXP, BASEENV_SXP = 247, 242, 241
ATTRLANGSXP, ATTRLISTSXP, ALTREP_SXP = 240, 239, 238

NA_INTEGER = -2147483648


class RSym:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return "RSym(%r)" % self.name


class RObj:
    """A generic R object: type, value, attributes (dict name -> value)."""

    def __init__(self, rtype, value, attrs=None):
        self.rtype = rtype
        self.value = value
        self.attrs = attrs or {}

    def __repr__(self):
        return "RObj(%d, %r, %r)" % (self.rtype, self.value, self.attrs)


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0
        self.refs = []

    def read(self, n):
        if self.pos + n > len(self.data):
            raise ValueError("truncated R serialization")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def int(self):
        return struct.unpack(">i", self.read(4))[0]

    def length(self):
        n = self.int()
        if n == -1:  # long vector: two 32-bit halves
            hi, lo = self.int(), self.int()
            n = (hi << 32) + (lo & 0xFFFFFFFF)
        return n

    def header(self):
        fmt = self.read(2)
        if fmt != b"X\n":
            raise ValueError("only the XDR serialization format is supported, got %r" % fmt)
        version = self.int()
        self.int()  # writer R version
        self.int()  # minimal reader R version
        if version == 3:
            nelen = self.int()
            self.read(nelen)  # native encoding name
        elif version != 2:
            raise ValueError("unsupported serialization version %d" % version)

    def attributes(self):
        """Read a pairlist of attributes and return it as a dict."""
        pl = self.item()
        out = {}
        while isinstance(pl, RObj) and pl.rtype == LISTSXP:
            car, tag = pl.value
            out[tag.name if isinstance(tag, RSym) else str(tag)] = car
            pl = pl.attrs.get("__cdr__")
        return out

    def item(self):
        flags = self.int()
        t = flags & 0xFF
        levels = flags >> 12
        has_attr = bool(flags & (1 << 9))
        has_tag = bool(flags & (1 << 10))

        if t == NILVALUE_SXP:
            return None
        if t in (EMPTYENV_SXP, BASEENV_SXP, GLOBALENV_SXP, UNBOUNDVALUE_SXP,
                 MISSINGARG_SXP, BASENAMESPACE_SXP):
            return RObj(t, None)
        if t == REFSXP:
            idx = flags >> 8
            if idx == 0:
                idx = self.int()
            return self.refs[idx - 1]
        if t == PERSISTSXP:
            obj = RObj(t, self.item())
            self.refs.append(obj)
            return obj
        if t == SYMSXP:
            name = self.item()  # a CHARSXP
            sym = RSym(name)
            self.refs.append(sym)
            return sym
        if t in (PACKAGESXP, NAMESPACESXP):
            obj = RObj(t, self.item())
            self.refs.append(obj)
            return obj
        if t == ENVSXP:
            obj = RObj(ENVSXP, None)
            self.refs.append(obj)
            self.int()  # locked
            enclos = self.item()
            frame = self.item()
            hashtab = self.item()
            attrib = self.item()
            obj.value = {"enclos": enclos, "frame": frame, "hashtab": hashtab}
            obj.attrs = {"__attrib__": attrib}
            return obj
        if t in (LISTSXP, LANGSXP, CLOSXP, PROMSXP, DOTSXP, ATTRLANGSXP, ATTRLISTSXP):
            attrs = self.attributes() if has_attr else {}
            tag = self.item() if has_tag else None
            car = self.item()
            cdr = self.item()
            attrs["__cdr__"] = cdr
            return RObj(LISTSXP if t in (ATTRLISTSXP,) else t, (car, tag), attrs)
        if t == CHARSXP:
            n = self.int()
            if n == -1:
                return None  # NA_STRING
            raw = self.read(n)
            if levels & (1 << 1):  # BYTES_MASK: keep raw bytes as latin-1
                return raw.decode("latin-1")
            if levels & (1 << 2):  # LATIN1_MASK
                return raw.decode("latin-1")
            return raw.decode("utf-8")  # UTF8 / ASCII / native (UTF-8 locale)
        if t in (LGLSXP, INTSXP):
            n = self.length()
            vals = list(struct.unpack(">%di" % n, self.read(4 * n)))
            vals = [None if v == NA_INTEGER else v for v in vals]
            if t == LGLSXP:
                vals = [None if v is None else bool(v) for v in vals]
            value = vals
        elif t == REALSXP:
            n = self.length()
            value = list(struct.unpack(">%dd" % n, self.read(8 * n)))
        elif t == CPLXSXP:
            n = self.length()
            d = struct.unpack(">%dd" % (2 * n), self.read(16 * n))
            value = [complex(d[2 * i], d[2 * i + 1]) for i in range(n)]
        elif t == RAWSXP:
            n = self.length()
            value = self.read(n)
        elif t == STRSXP:
            n = self.length()
            value = [self.item() for _ in range(n)]  # each a CHARSXP (None = NA)
        elif t in (VECSXP, EXPRSXP):
            n = self.length()
            value = [self.item() for _ in range(n)]
        elif t == S4SXP:
            value = None
        elif t == ALTREP_SXP:
            raise ValueError("ALTREP objects are not supported")
        else:
            raise ValueError("unsupported SEXP type %d at offset %d" % (t, self.pos))
        attrs = self.attributes() if has_attr else {}
        return RObj(t, value, attrs)


def unserialize(data):
    r = Reader(data)
    r.header()
    return r.item()


def names_of(obj):
    names = obj.attrs.get("names")
    return names.value if names is not None else None


def read_rdb_entry(rdb, offset, length):
    blob = rdb[offset:offset + length]
    if len(blob) < 5:
        raise ValueError("rdb entry too short")
    outlen = struct.unpack(">I", blob[:4])[0]
    kind = blob[4:5]
    if kind == b"Z":
        data = bz2.decompress(blob[5:])
    elif kind == b"2":
        data = blob[5:]
    elif kind == b"X":
        data = lzma.decompress(blob[5:])
    else:  # type 1: plain zlib right after the length
        data = zlib.decompress(blob[4:])
    if len(data) != outlen:
        raise ValueError("rdb entry: expected %d bytes, got %d" % (outlen, len(data)))
    return data


def find_pkgdir():
    cands = glob.glob("/usr/lib/R/site-library/janeaustenr") + \
        glob.glob("/usr/lib/R/library/janeaustenr") + \
        glob.glob("/usr/local/lib/R/site-library/janeaustenr")
    for c in cands:
        if os.path.exists(os.path.join(c, "data", "Rdata.rdx")):
            return c
    raise SystemExit("janeaustenr not found; install the Debian package r-cran-janeaustenr "
                     "or pass --pkgdir (see `dpkg -L r-cran-janeaustenr`)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pkgdir", help="installed janeaustenr R package directory")
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    pkgdir = args.pkgdir or find_pkgdir()
    base = os.path.join(pkgdir, "data", "Rdata")
    with open(base + ".rdx", "rb") as f:
        rdx = f.read()
    if rdx[:2] == b"\x1f\x8b":
        rdx = gzip.decompress(rdx)
    index = unserialize(rdx)
    idx_names = names_of(index)
    variables = index.value[idx_names.index("variables")]
    var_names = names_of(variables)
    with open(base + ".rdb", "rb") as f:
        rdb = f.read()

    for rname, fname in NOVELS.items():
        if rname not in var_names:
            raise SystemExit("object %r not in %s.rdx (has %s)" % (rname, base, var_names))
        off, length = variables.value[var_names.index(rname)].value
        obj = unserialize(read_rdb_entry(rdb, off, length))
        if not isinstance(obj, RObj) or obj.rtype != STRSXP:
            raise SystemExit("object %r is not a character vector" % rname)
        lines = ["" if s is None else s for s in obj.value]  # NA -> empty line
        n_na = sum(1 for s in obj.value if s is None)
        text = "\n".join(lines) + "\n"
        path = os.path.join(args.out, fname)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
        print("%-28s %6d lines %8d chars%s" % (fname, len(lines), len(text),
                                                (" (%d NA lines -> empty)" % n_na) if n_na else ""))


if __name__ == "__main__":
    main()
