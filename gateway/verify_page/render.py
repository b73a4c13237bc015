"""The verification page's HTML: each entry with its status, its author and how it was
checked, with links to the anchors and the export documents."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

from chain.verify.export import ChainRef
from gateway.verify_page.export import TX_HASH, Node, Page
from services.api.keiko.passport import v1 as pb

# -- the page ----------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:1.5rem auto;padding:0 .8rem;
color:#222;line-height:1.4;overflow-wrap:anywhere}
h1{font-size:1.5rem} .meta{color:#555} ol{padding-left:1.2rem}
section.group{margin-left:.4rem} section.group>section.group{margin-left:.8rem}
h3,h4,h5,h6{margin:.8rem 0 .3rem}
li.entry{margin:.4rem 0;padding:.4rem .6rem;border-left:4px solid #aaa;background:#fafafa}
li.entry[data-status=verified]{border-color:#2a7}
li.entry[data-status=failed]{border-color:#c33}
li.entry[data-status=pending]{border-color:#d90}
.status{font-weight:600;text-transform:uppercase;font-size:.8rem;margin-right:.5rem}
.reason{color:#c33;display:block;font-size:.9rem}
.author{display:block;font-size:.9rem;font-weight:600}
.key{display:block;font-size:.8rem;color:#555} code{font-size:.85rem;word-break:break-all}
.summary{font-size:1.1rem} .counts span{margin-right:1rem;white-space:nowrap}
.command{display:flex;gap:.5rem;align-items:flex-start;flex-wrap:wrap}
.command pre{flex:1 1 16rem;margin:0;padding:.6rem;background:#f3f3f3;white-space:pre-wrap;
word-break:break-all;font-size:.85rem}
.command button{padding:.4rem .8rem;font-size:.95rem}
@media (max-width:30rem){body{margin:.8rem auto}h1{font-size:1.25rem}.summary{font-size:1rem}
ol{padding-left:.9rem}}
"""


_LEVELS = {
    "COURSE": "Course",
    "CLASS": "Class",
    "TUTORIAL_SESSION": "Tutorial session",
    "STUDY_SESSION": "Study session",
    "UNGROUPED": "Other interactions",
}


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _status(entry: pb.PassportEntry, check: Any) -> tuple[str, str]:
    if check is None:
        return "pending", "not yet signed and anchored"
    if check.verified:
        return "verified", ""
    if check.reason:
        return "failed", check.reason
    return "pending", "waiting for its batch to be anchored on Keikochain"


def _downloads(links: Sequence[tuple[str, str]]) -> str:
    """The entry's W3C credentials (issued by the learner), to download."""
    if not links:
        return ""
    anchors = " ".join(
        f'<a class="credential" href="{esc(href)}" download>{esc(label)}</a>'
        for label, href in links
    )
    return f' <span class="credentials">W3C credential: {anchors}</span>'


def _authorship(entry: pb.PassportEntry, check: Any) -> str:
    """Who wrote the entry, whose key signed it and whether the chain has that key."""
    label = entry.author.label or "author not stated"
    key = entry.author.public_key_hex or entry.public_key_hex
    text = f'<span class="author" data-kind="{esc(pb.AuthorKind(entry.author.kind).name)}">'
    text += f"{esc(label)}</span>"
    if key:
        holder = ""
        if check is not None and check.key_holder:
            holder = f" of {esc(check.key_holder)}"
        registration = ""
        if check is not None and check.key_registration:
            registration = f", {esc(check.key_registration)}"
            if check.key_custody:
                registration += (
                    f" as a {esc(check.key_custody)} key at block {esc(check.key_registered_block)}"
                )
        text += (
            f'<span class="key">signed by the key{holder} <code>{esc(key[:16])}…</code>'
            f"{registration}</span>"
        )
    return text


def render_page(
    page: Page,
    checks: dict[str, Any],
    *,
    explorer_tx_url: str,
    cli_target: str,
    chain: ChainRef | None,
    credentials: Mapping[str, list[tuple[str, str]]] | None = None,
) -> str:
    counts = {"verified": 0, "failed": 0, "pending": 0}
    downloads = credentials or {}

    def row(entry: pb.PassportEntry) -> str:
        status, reason = _status(entry, checks.get(entry.statement_id))
        counts[status] += 1
        tx = entry.anchor.tx_hash
        anchor = ""
        if tx and TX_HASH.match(tx):
            href = explorer_tx_url.replace("{tx_hash}", tx)
            anchor = (
                f' <a class="anchor" href="{esc(href)}">anchor tx <code>{esc(tx[:18])}…</code></a>'
                f" block {esc(entry.anchor.block_number)}"
            )
        when = entry.timestamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        return (
            f'<li class="entry" data-status="{status}" data-entry-id="{esc(entry.statement_id)}">'
            f'<span class="status">{status}</span><span class="summary">{esc(entry.summary)}</span>'
            f' <span class="when">{esc(when)}</span>{anchor}'
            + _authorship(entry, checks.get(entry.statement_id))
            + (f'<span class="reason">{esc(reason)}</span>' if status == "failed" else "")
            + _downloads(downloads.get(entry.statement_id, []))
            + f'<br><code class="id">{esc(entry.statement_id)}</code></li>'
        )

    def section(node: Node, depth: int) -> str:
        label = _LEVELS.get(node.level, node.level.title())
        heading = f"{label}: {node.title}" if node.id else node.title or label
        tag = f"h{min(depth + 3, 6)}"
        items = "".join(row(e) for e in node.entries)
        inner = f'<ol class="entries">{items}</ol>' if items else ""
        inner += "".join(section(c, depth + 1) for c in node.children.values())
        return (
            f'<section class="group" data-level="{esc(node.level.lower())}">'
            f"<{tag}>{esc(heading)}</{tag}>{inner}</section>"
        )

    if page.groups:
        body = "".join(section(n, 0) for n in page.groups.values())
    else:
        body = "".join(row(e) for e in page.entries)
        body = f'<ol class="entries">{body}</ol>' if body else ""
    who = page.passport.owner_display_name or page.passport.owner_id or "identity not disclosed"
    expires = (
        f"<p class='meta'>This share link expires {page.expires_at.isoformat()}.</p>"
        if page.expires_at
        else ""
    )
    command = f"keiko passport verify {cli_target}"
    if chain is not None:
        where = (
            f"<p class='meta' id='chain'>Anchored on chain <code>{esc(chain.chain_name)}</code>"
            f" (<code>{esc(hex(chain.chain_id))}</code>), contract "
            f"<code>{esc(hex(chain.anchor_contract))}</code>"
            + (f", node <code>{esc(chain.rpc_url)}</code>" if chain.rpc_url else "")
            + ".</p>"
        )
    else:
        where = ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="robots" content="noindex">
<title>Keiko passport {esc(page.passport.id)}</title><style>{_STYLE}</style></head>
<body>
<h1>Life-Learning Passport</h1>
<p class="meta">Passport <code id="passport-id">{esc(page.passport.id)}</code> · learner
<span id="learner">{esc(who)}</span>
· key <code>{esc(page.passport.ed25519_public_key or "-")}</code></p>
{expires}{where}
<p class="counts" id="counts"><span>{len(page.entries)} entries</span>
<span>{counts["verified"]} verified</span><span>{counts["failed"]} failed</span>
<span>{counts["pending"]} pending</span></p>
<div id="timeline">
{body or "<p>No entries are visible.</p>"}
</div>
<h2>Verify it yourself</h2>
<p>Each entry's Ed25519 signature and Merkle inclusion proof were checked by this server
against the root recorded on Keikochain. You do not have to trust it: with Keiko
installed (<code>make install</code> in its repository), run</p>
<div class="command"><pre id="verify-command">{esc(command)}</pre>
<button type="button" id="copy-command">Copy</button></div>
<p>which downloads the public export, checks every signature and proof, and reads every
root from the chain the export names, checking its chain id and the anchor contract's
code. <code>--rpc &lt;url&gt;</code> reads the chain from a node of your choice instead.</p>
<p>An entry's W3C Verifiable Credential (when the learner issued one) is checked the same
way, <code>keiko passport verify credential.json --rpc &lt;url&gt;</code>, or by any Data
Integrity verifier (<code>eddsa-rdfc-2022</code>; contexts at <code>/contexts/</code>).</p>
<script>
document.getElementById("copy-command").addEventListener("click", async (event) => {{
  const text = document.getElementById("verify-command").textContent;
  try {{ await navigator.clipboard.writeText(text); event.target.textContent = "Copied"; }}
  catch (err) {{ window.getSelection().selectAllChildren(
    document.getElementById("verify-command")); event.target.textContent = "Press Ctrl-C"; }}
}});
</script>
</body></html>"""
