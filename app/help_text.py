"""The "How to plan" dock's text: the steps of planning a level, the status colours and
the keys, for a surgeon who has not read a manual."""

from __future__ import annotations

from planning.vocabulary import DISCLAIMER

HELP_HTML = """
<h3>Planning a level</h3>
<ol>
<li><b>Open a CT</b> (File menu). The spine is found automatically: levels appear in the
<i>Levels</i> panel, the canal is outlined in <span style='color:#4fc3f7'>blue</span>.</li>
<li><b>Check the level names</b> against the ribs and the sacrum. If they are off by one,
use <b>Shift ↑ / ↓</b>.</li>
<li><b>Propose</b> (Ctrl+P) plans both pedicles of the selected levels, or <b>Place
left / right</b> (Shift+L / Shift+R) and click the <b>entry</b>, then the <b>target</b>,
in any slice view.</li>
<li><b>Adjust</b>: drag the entry ring, the tip dot or the shaft in any slice view or in
3D. The status updates while you drag.</li>
<li><b>Save</b> (Ctrl+S). Every edit is also kept in a recovery file.</li>
</ol>
<h3>Status colours</h3>
<p><span style='color:#3ec46d'>● Safe</span>: clear of the canal by at least the caution
margin, tip in the body.<br>
<span style='color:#f2b630'>● Caution</span>: close to the canal or a wall, or the tip is
not where it should be.<br>
<span style='color:#ef4b4b'>● Unsafe</span>: enters the canal, breaches a medial wall or
the anterior cortex, comes within 3 mm of a contrast-filled vessel (drawn in pink), runs into
metal (a screw, rod or wire), or the CT shows no bone around its tip.</p>
<p>Breach grades follow Gertzbein–Robbins: A none, B &lt; 2 mm, C 2–4 mm, D 4–6 mm,
E &gt; 6 mm.</p>
<h3>Keys</h3>
<p>Ctrl+Z / Ctrl+Shift+Z undo / redo · Del delete the selected needle · Esc cancel
placing · F1 mouse and keyboard.</p>
""" + f"<p><b>{DISCLAIMER}.</b></p>\n"
