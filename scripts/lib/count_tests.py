#!/usr/bin/env python3
"""Usage: count_tests.py BUILD_DIR [MESON_TEST_STATUS]

Counts individual test cases after `meson test`: prints "N passed, N failed".

Boost.Test executables write JUnit reports (<name>.junit.xml) next to themselves; each
<testcase> counts once. A meson test without a report (a shell script) counts as one case.
A test that meson saw fail but whose report shows no failure (a crash, a timeout) adds one
failure, so a failing run can never print "0 failed". Exit status 1 if anything failed.
"""
import json
import pathlib
import sys
import xml.etree.ElementTree as ET

build = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "build")
log = build / "meson-logs" / "testlog.json"
reports = {p.name[: -len(".junit.xml")]: p for p in build.rglob("*.junit.xml")}

passed = failed = 0
if log.exists():
    for line in log.read_text().splitlines():
        if not line.strip():
            continue
        t = json.loads(line)
        name = t["name"].split(":")[-1].split("/")[-1].strip()  # "pypool:unit / smoke"
        ok = t["result"] in ("OK", "EXPECTEDFAIL", "SKIP")
        report = reports.get("test_" + name) or reports.get(name)
        case_pass = case_fail = 0
        if report is not None:
            try:
                for case in ET.parse(report).getroot().iter("testcase"):
                    bad = case.find("failure") is not None or case.find("error") is not None
                    skipped = case.find("skipped") is not None
                    if bad:
                        case_fail += 1
                    elif not skipped:
                        case_pass += 1
            except ET.ParseError:
                report = None
        if report is None:
            case_pass, case_fail = (1, 0) if ok else (0, 1)
        elif not ok and case_fail == 0:
            case_fail = 1  # crashed or timed out after its report said all was well
            print(f"{name}: meson reports {t['result']} although no case failed", file=sys.stderr)
        passed += case_pass
        failed += case_fail
else:
    print("no meson test log found", file=sys.stderr)
    failed = 1
if len(sys.argv) > 2 and sys.argv[2] != "0" and failed == 0:
    print("meson test failed outside any test case (build or setup)", file=sys.stderr)
    failed = 1
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
