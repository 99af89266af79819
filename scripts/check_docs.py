#!/usr/bin/env python3
"""Docs that cannot drift: checks what the pages of docs/ say against the code and the lessons.

Run by ctest (docs_match_the_code), after every lesson's --quick run:

    scripts/check_docs.py --source . --bin build/bin --runs build/runs-test

On README.md, docs/*.md and docs/chapters/*.md (text outside fenced code blocks):
  1. paths: every backticked path of the repository (`models/vae.h`, `models/mixtures.{h,cpp}`,
     `tests/homework/<chapter>.cpp`, a bare `blas.cpp`) exists, and every relative link [..](..) too;
  2. code names: every backticked qualified name (`train::fit`, `dist::Normal::rsample(gen)`) is
     defined: each qualifier is a namespace, class, struct or enum of the sources, and the last
     name appears in a file that declares its qualifier (`std::` is not checked);
  3. flags: every --flag on a chapter page is in its lesson's --help (a line that names another
     program, lesson_<other> or make, bench_train, ctest ..., is checked against that one or skipped);
  4. metrics keys: every backticked key on a line that names `metrics.json` is in the lesson's
     metrics.json of its --quick run, or (a full run's key) a string literal of the lesson's source;
  5. CHECK tables: on a chapter page, a table with a column "CHECK line" lists what the lesson
     prints: each backticked text in that column is the start of a CHECK line of lesson_<page>
     --quick (rows whose first cell says "full run" or "with the data", which --quick in the test
     suite does not reach: the start of a string in lessons/<page>.cpp),
     and every CHECK line of --quick is listed;
  6. equations: a chapter page numbers its equations (n) from 1 without gaps, and the paragraph
     right after every numbered equation starts with "Code:" and names, in backticks, the file and
     the function that compute it (the function must be in that file);
  7. figures in one place: a chapter page quotes no speed figure (ms per step, a ratio against
     libtorch); those live in docs/performance.md;
  8. the homework's files (stubs, graders, READMEs) name only pages and sources that exist.
A failure names the page, the line and what is missing; the exit code is 1.
"""
import argparse
import difflib
import html
import json
import re
import subprocess
import sys
from pathlib import Path

SOURCE_DIRS = ["autograd", "models", "lessons", "bench", "fuzz", "homework", "tests", "scripts"]
SOURCE_EXTS = {".h", ".cpp", ".py", ".sh", ".cmake", ".in", ".c"}
PATH_ROOTS = ("autograd/", "models/", "lessons/", "tests/", "scripts/", "bench/", "docs/", "homework/",
              "fuzz/", ".ci/", "data/")
PATH_EXTS = (".h", ".cpp", ".c", ".md", ".py", ".sh", ".cmake", ".in", ".txt")
OTHER_PROGRAMS = ("bench_train", "dgm_interop", "to_torch", "compare.sh", "ctest", "cmake", "make ",
                  "chromium", "fuzz", "python", "apt", "git ", "numpy_roundtrip", "leaderboard.sh",
                  "grade_", "OPENBLAS", "gnuplot", "ARGS=")


class Report:
    def __init__(self):
        self.failures = []
        self.counts = {}

    def fail(self, page, line, what):
        self.failures.append(f"{page}:{line}: {what}")

    def count(self, kind, n=1):
        self.counts[kind] = self.counts.get(kind, 0) + n


def prose_lines(text):
    """(line number, line) outside fenced code blocks; indented blocks (equations) are kept."""
    fenced = False
    for i, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            yield i, line


def spans(line):
    return re.findall(r"`([^`]+)`", line)


# ------------------------------------------------------------------ the sources, once
class Sources:
    def __init__(self, root):
        self.root = root
        self.files = {}
        for d in SOURCE_DIRS:
            for p in (root / d).rglob("*"):
                if p.is_file() and p.suffix in SOURCE_EXTS:
                    self.files[p.relative_to(root).as_posix()] = p.read_text(errors="replace")
        self.cpp = {k: v for k, v in self.files.items() if k.endswith((".h", ".cpp"))}
        self.basenames = {}  # every file's name, for a bare `blas.cpp` (build folders and .git left out)
        for p in root.rglob("*"):
            top = p.relative_to(root).parts[0]
            if top == ".git" or top.startswith("build"):
                continue
            self.basenames.setdefault(p.name, []).append(p)
        # the scopes each file declares: namespaces (also a::b::c), classes, structs, enums
        self.scopes = {}
        for name, text in self.cpp.items():
            found = set()
            for m in re.finditer(r"\bnamespace\s+([\w:]+)\s*\{", text):
                found.update(m.group(1).split("::"))
            for m in re.finditer(r"\b(?:class|struct|enum\s+class|enum|union)\s+(?:\[\[[^\]]*\]\]\s*)?(\w+)", text):
                found.add(m.group(1))
            for m in re.finditer(r"\busing\s+(\w+)\s*=", text):
                found.add(m.group(1))
            self.scopes[name] = found

    def declares(self, scope):
        return [f for f, s in self.scopes.items() if scope in s]

    def any_defines(self, name):
        """A function of that name is declared or defined somewhere: `name(` after a type or a scope."""
        pat = re.compile(r"(?:[\w>&*]\s+|::)" + re.escape(name) + r"\s*\(")
        return any(pat.search(t) for t in self.cpp.values())

    def defines(self, name, in_files):
        pat = re.compile(r"(?<![\w.])" + re.escape(name) + r"\b")
        return any(pat.search(self.cpp[f]) for f in in_files)


# ------------------------------------------------------------------ 1. paths
def expand(path):
    m = re.search(r"\{([^{}]+)\}", path)
    if not m:
        return [path]
    return [x for alt in m.group(1).split(",") for x in expand(path[:m.start()] + alt + path[m.end():])]


def is_repo_path(token):
    if " " in token or token.startswith(("../", "/", "runs/", "build/", "http")) or "::" in token:
        return False
    return token.startswith(PATH_ROOTS) or ("/" not in token and token.endswith(PATH_EXTS) and "<" not in token)


def path_exists(root, sources, token):
    for p in expand(token.rstrip("/")):
        if "/" not in p:
            if p not in sources.basenames:
                return False
            continue
        pattern = re.sub(r"<[^>]+>", "*", p)
        if "*" in pattern:
            if not list(root.glob(pattern)):
                return False
        elif not (root / p).exists():
            return False
    return True


def check_paths(root, sources, page, text, report):
    for n, line in prose_lines(text):
        for s in spans(line):
            token = s.split()[0] if s.split() else s
            if is_repo_path(token):
                report.count("paths")
                if not path_exists(root, sources, token):
                    report.fail(page, n, f"`{s}`: no such file or folder in the repository")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", line):
            if target.startswith(("http", "mailto:", "../shared", "../../shared")):
                continue
            report.count("links")
            if not ((root / page).parent / target).exists():
                report.fail(page, n, f"link ({target}): no such file")


# ------------------------------------------------------------------ 2. code names
QUALIFIED = re.compile(r"^(?:dgm::)?((?:[A-Za-z_]\w*::)+~?[A-Za-z_]\w*)")


def check_names(sources, page, text, report):
    for n, line in prose_lines(text):
        for s in spans(line):
            m = QUALIFIED.match(s.strip())
            if not m or s.startswith(("std::", "torch::", "xt::", "Catch::", "nlohmann::", "CLI::")):
                continue
            parts = m.group(1).split("::")
            report.count("code names")
            files = None
            for q in parts[:-1]:
                declaring = sources.declares(q)
                if not declaring:
                    report.fail(page, n, f"`{s}`: no namespace, class or struct `{q}` in the sources")
                    files = None
                    break
                files = declaring
            else:
                last = parts[-1].lstrip("~")
                if not sources.defines(last, files):
                    report.fail(page, n, f"`{s}`: `{last}` is not in any file that declares `{parts[-2]}` "
                                f"({', '.join(sorted(files)[:4])}{' ...' if len(files) > 4 else ''})")


# ------------------------------------------------------------------ 3. flags
def help_text(bin_dir, program, cache):
    if program not in cache:
        exe = bin_dir / program
        cache[program] = subprocess.run([str(exe), "--help"], capture_output=True, text=True,
                                        timeout=60).stdout if exe.exists() else None
    return cache[program]


def check_flags(bin_dir, lessons, page, text, report, helps):
    lesson = Path(page).stem
    if lesson not in lessons:
        return
    for n, line in prose_lines(text):
        flags = re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]+)", line)
        if not flags:
            continue
        others = [l for l in re.findall(r"lesson_(\w+)", line) if l != lesson and l in lessons]
        if others:
            program = "lesson_" + others[0]
        elif any(p in line for p in OTHER_PROGRAMS):
            continue
        else:
            program = "lesson_" + lesson
        h = help_text(bin_dir, program, helps)
        if h is None:
            report.fail(page, n, f"{program} is not built in {bin_dir} (needed to check its flags)")
            continue
        for f in flags:
            report.count("flags")
            if not re.search(re.escape(f) + r"(?![\w-])", h):
                report.fail(page, n, f"{f} is not a flag of {program} (not in its --help)")


# ------------------------------------------------------------------ 4. metrics keys
def check_metrics(root, sources, runs, lessons, page, text, report):
    chapter = Path(page).stem
    for n, line in prose_lines(text):
        if "metrics.json" not in line:
            continue
        lesson = chapter
        if page.endswith("outputs.md"):
            first = re.match(r"\|\s*`(\w+)`\s*\|", line)
            if not first:
                continue
            lesson = first.group(1)
        if lesson not in lessons:
            continue
        after = line[line.index("metrics.json") + len("metrics.json"):]
        after = after[1:] if after.startswith("`") else after
        keys = [s for s in spans(after) if re.fullmatch(r"[a-z<][\w<>]*", s) and ("_" in s or "<" in s)]
        metrics_file = runs / lesson / "metrics.json"
        written = set(json.loads(metrics_file.read_text())) if metrics_file.exists() else None
        if written is None:
            report.fail(page, n, f"{metrics_file} is missing (run lesson_{lesson} --quick first)")
            continue
        lesson_source = sources.files.get(f"lessons/{lesson}.cpp", "") + "".join(
            v for k, v in sources.files.items() if k.startswith("lessons/common/"))
        for key in keys:
            report.count("metrics keys")
            rx = re.compile("^" + re.sub(r"<[^>]+>", r"\\w+", key) + "$")
            if any(rx.match(k) for k in written):
                continue
            # a full run's key: it must still be written by the lesson's source
            literal = re.sub(r"<[^>]+>", "", key)
            if literal and re.search(r'"[^"\n]*' + re.escape(literal) + r'[^"\n]*"', lesson_source):
                continue
            report.fail(page, n, f"metrics key `{key}`: lesson_{lesson} --quick does not write it and "
                        f"lessons/{lesson}.cpp has no string with it")


# ------------------------------------------------------------------ 5. CHECK tables
def printed_checks(runs, lesson):
    page = runs / lesson / "index.html"
    if not page.exists():
        return None
    lines = re.findall(r"CHECK ([^<\n]*)", page.read_text())
    return [re.sub(r": [-+0-9.eE]+(?:nan|inf)? vs .*$|: -?(?:nan|inf) vs .*$", "", html.unescape(l)) for l in lines]


def table_rows(text):
    """Tables: (header cells, [(line number, cells)])."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and re.match(r"^\|[-| :]+\|$", lines[i + 1]):
            header = [c.strip() for c in lines[i].strip("|").split("|")]
            rows, j = [], i + 2
            while j < len(lines) and lines[j].startswith("|"):
                rows.append((j + 1, split_row(lines[j])))
                j += 1
            yield header, rows
            i = j
        else:
            i += 1


def split_row(line):
    cells, cur, tick = [], "", False
    for ch in line.strip()[1:-1]:
        if ch == "`":
            tick = not tick
        if ch == "|" and not tick:
            cells.append(cur.strip())
            cur = ""
        else:
            cur += ch
    cells.append(cur.strip())
    return cells


def check_check_tables(runs, sources, lessons, page, text, report):
    lesson = Path(page).stem
    if lesson not in lessons:
        return
    printed = printed_checks(runs, lesson)
    listed = []
    for header, rows in table_rows(text):
        col = next((k for k, h in enumerate(header) if h.lower().startswith("check line")), None)
        if col is None:
            continue
        if printed is None:
            report.fail(page, rows[0][0] if rows else 0,
                        f"{runs / lesson / 'index.html'} is missing (run lesson_{lesson} --quick first)")
            return
        for n, cells in rows:
            full_run = bool(re.search(r"full run|with the data", cells[0]))
            for s in spans(cells[col] if col < len(cells) else ""):
                s = s.replace("\\|", "|")  # a | in a table cell is written \|, in code spans too
                report.count("CHECK lines")
                listed.append(s)
                if full_run:
                    src = sources.files.get(f"lessons/{lesson}.cpp", "")
                    if ('"' + s) not in src:
                        report.fail(page, n, f"CHECK line `{s}` ({cells[0]}): no string in lessons/{lesson}.cpp "
                                    "starts with it")
                elif not any(p.startswith(s) for p in printed):
                    close = difflib.get_close_matches(s, printed, n=1, cutoff=0.3)
                    report.fail(page, n, f"CHECK line `{s}` is not printed by lesson_{lesson} --quick"
                                + (f" (closest: `{close[0]}`)" if close else ""))
    if listed and printed is not None:
        for p in printed:
            if not any(p.startswith(s) for s in listed):
                report.fail(page, 0, f"lesson_{lesson} --quick prints `CHECK {p}`, which its CHECK table "
                            "does not list")
    elif printed and not listed:
        report.fail(page, 0, f"no table with a column \"CHECK line\" (lesson_{lesson} --quick prints "
                    f"{len(printed)} CHECK lines)")


# ------------------------------------------------------------------ 6. equations
def check_pointer(root, sources, page, n, numbers, paragraph, report):
    """The paragraph right after an equation block starts with "Code:" and names, in backticks, the
    files (`models/flows.cpp`) and the functions in them (`AdditiveCoupling::forward`) that compute it."""
    label = ", ".join(f"({k})" for k in numbers)
    text = " ".join(paragraph)
    if not text.startswith("Code:"):
        report.fail(page, n, f"equation {label}: the paragraph after it does not start with \"Code:\" "
                    "(the file and function that compute it, in backticks)")
        return
    files, names = [], []
    for s in spans(text):
        paths = [p for p in expand(s.split()[0]) if is_repo_path(p)] if s.split() else []
        if paths:
            files += paths
        else:
            m = QUALIFIED.match(s.strip()) or re.match(r"^([A-Za-z_]\w*)(?:\(|$)", s.strip())
            if m:
                names.append(m.group(1).split("::")[-1].lstrip("~"))
    if not files or not names:
        report.fail(page, n, f"equation {label}: its Code: line needs a backticked file and a backticked "
                    "function name")
        return
    for f in files:
        if not (root / f).exists():
            report.fail(page, n, f"equation {label}: `{f}` does not exist")
            return
    texts = "".join(sources.files.get(f) or (root / f).read_text(errors="replace") for f in files)
    for name in names:
        if not re.search(r"(?<![\w.])" + re.escape(name) + r"\b", texts):
            report.fail(page, n, f"equation {label}: `{name}` is not in {', '.join(files)}")


def check_equations(root, sources, page, text, report):
    lines = text.splitlines()
    numbers = []
    fenced = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if fenced or not line.startswith("    "):
            i += 1
            continue
        b = i  # an indented block: lines[i..b]
        while b + 1 < len(lines) and (lines[b + 1].startswith("    ") or not lines[b + 1].strip()) and any(
                l.startswith("    ") for l in lines[b + 1:b + 3]):
            b += 1
        found = [(k + 1, int(m.group(1))) for k in range(i, b + 1)
                 for m in [re.search(r"\S\s+\((\d+)\)\s*$", lines[k])] if m]
        if found:
            numbers += found
            report.count("equations", len(found))
            after, k = [], b + 1
            while k < len(lines) and not lines[k].strip():
                k += 1
            while k < len(lines) and lines[k].strip():
                after.append(lines[k].strip())
                k += 1
            check_pointer(root, sources, page, found[0][0], [x for _, x in found], after, report)
        i = b + 1
    seen = []
    for n, number in numbers:
        if number not in seen:
            seen.append(number)
    if seen and sorted(seen) != list(range(1, len(seen) + 1)):
        report.fail(page, numbers[0][0], f"equations are numbered {sorted(seen)}: number them 1 to {len(seen)}")


# ------------------------------------------------------------------ 7. speed figures
SPEED = re.compile(r"\b\d[\d.,]*\s*(ms|us|µs)\b|\bit/s\b|\bsteps? (per|a) second\b|"
                   r"\bratios?\b.{0,160}\blibtorch\b|\blibtorch\b.{0,160}\bratios?\b", re.I)


def check_speed(page, text, report):
    paragraph, start = [], 0
    for n, line in list(prose_lines(text)) + [(0, "")]:
        if line.strip():
            if not paragraph:
                start = n
            paragraph.append(line)
            continue
        m = SPEED.search(" ".join(paragraph))
        if m:
            report.fail(page, start, f"a speed figure (\"{m.group(0)}\"): speed figures live in "
                        "docs/performance.md; link to it")
        paragraph = []


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--source", default=".")
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--runs", default="build/runs-test")
    ap.add_argument("--lessons", default="", help="the lesson names, ; or space separated (default: lessons/*.cpp)")
    ap.add_argument("--pretend-renamed", metavar="OLD:NEW", action="append", default=[],
                    help="check as if the sources had renamed OLD to NEW (the test that the checker catches it)")
    args = ap.parse_args()
    root = Path(args.source).resolve()
    lessons = [l for l in re.split(r"[;\s]+", args.lessons) if l] or sorted(
        p.stem for p in (root / "lessons").glob("*.cpp"))
    sources = Sources(root)
    for rename in args.pretend_renamed:
        old_name, new_name = rename.split(":")
        pat = re.compile(r"\b" + re.escape(old_name) + r"\b")
        sources.files = {k: pat.sub(new_name, v) for k, v in sources.files.items()}
        sources.cpp = {k: v for k, v in sources.files.items() if k.endswith((".h", ".cpp"))}
    report = Report()
    helps = {}
    pages = [root / "README.md"] + sorted((root / "docs").glob("*.md")) + sorted((root / "docs/chapters").glob("*.md"))
    for p in pages:
        page = p.relative_to(root).as_posix()
        text = p.read_text()
        check_paths(root, sources, page, text, report)
        check_names(sources, page, text, report)
        if page.startswith("docs/"):
            check_metrics(root, sources, Path(args.runs), lessons, page, text, report)
        if page.startswith("docs/chapters/") and page != "docs/chapters/leaderboard.md":
            check_flags(Path(args.bin), lessons, page, text, report, helps)
            check_check_tables(Path(args.runs), sources, lessons, page, text, report)
            check_equations(root, sources, page, text, report)
            check_speed(page, text, report)
    # The homework's files (stubs, graders, READMEs) name pages and sources in their comments too.
    for p in sorted((root / "homework").rglob("*")):
        if p.suffix not in (".h", ".cpp", ".md", ".in"):
            continue
        page = p.relative_to(root).as_posix()
        for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1):
            for token in re.findall(r"(?<![\w/.])((?:docs|homework|models|autograd|lessons|tests|scripts)/[\w./<>{},-]+)", line):
                token = token.rstrip(".,")
                if not token.endswith(PATH_EXTS) and not token.endswith("/"):
                    continue
                report.count("homework paths")
                if not path_exists(root, sources, token):
                    report.fail(page, n, f"{token}: no such file or folder in the repository")
    summary = ", ".join(f"{v} {k}" for k, v in sorted(report.counts.items()))
    if report.failures:
        print(f"docs drifted from the code ({len(report.failures)} problems; checked {summary}):")
        for f in report.failures:
            print("  " + f)
        return 1
    print(f"docs match the code: {len(pages)} pages, {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
