"""Writes large_50000.csv: 50,000 result rows (500 patients G0000-G0499, 20 collection
times each, 5 analytes), a fixed pattern so the file is the same on every machine.
Run from this folder: python make_large_csv.py"""

import csv

ANALYTES = [("1742-6", "U/L", "5-40", 20, 55), ("1920-8", "U/L", "5-40", 18, 50), ("1975-2", "mg/dL", "0.2-1.2", 0.4, 1.3),
            ("2160-0", "mg/dL", "0.5-1.2", 0.7, 1.3), ("2157-6", "U/L", "20-200", 60, 260)]

with open("large_50000.csv", "w", newline="") as f:
    out = csv.writer(f)
    out.writerow(["MRN", "Test", "Result", "Units", "Reference range", "Collected at"])
    for p in range(500):
        for t in range(20):
            day, hour = 1 + (t * 3) % 28, 7 + p % 10
            month = 6 + (t * 3) // 28
            for i, (code, unit, ref, low, high) in enumerate(ANALYTES):
                step = ((p * 7 + t * 13 + i * 5) % 100) / 100
                value = round(low + (high - low) * step, 1 if isinstance(low, float) else 0)
                out.writerow([f"G{p:04d}", code, value, unit, ref, f"2026-{month:02d}-{day:02d} {hour:02d}:{p % 60:02d}"])
