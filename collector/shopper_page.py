"""The shopper's pages: what the receipt's QR code and a product's Digital Link open.

Rendered from the public views of :mod:`collector.public_view` only, so a page cannot show
what the public may not see. Chinese first (``zh-CN``), English with ``?lang=en``: every
string is in :data:`STRINGS`. Every value from the store is escaped; no script, no external
asset: the one stylesheet is served by the public listener itself (:data:`STYLESHEET` at
:data:`CSS_PATH`), as its Content-Security-Policy (``default-src 'self'``) requires.
Readable at 390 px: one column, long codes wrap, nothing wider than the screen.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

from collector.amounts import kg, yuan
from collector.public_view import (
    Complaint,
    Place,
    PublicBatch,
    PublicBatchAnswer,
    PublicHop,
    PublicLine,
    PublicStop,
    PublicTrace,
    PublicTrader,
)

LANGS = ("zh", "en")
CSS_PATH = "/assets/shopper.css"

STRINGS: dict[str, dict[str, str]] = {
    "zh": {
        "html_lang": "zh-CN",
        "site": "肉菜流通追溯",
        "trace_title": "追溯码 {code}",
        "batch_title": "批次 {code}",
        "receipt": "小票信息",
        "trace_code": "追溯码",
        "tran_id": "交易凭证号",
        "time": "交易时间",
        "market": "市场",
        "seller": "经营户",
        "stall": "摊位",
        "items": "商品明细",
        "goods": "商品",
        "quantity": "重量/数量",
        "price": "单价",
        "amount": "金额",
        "total": "合计",
        "kg": "{v} 公斤",
        "pieces": "{v} 件",
        "yuan": "{v} 元",
        "per_kg": "{v} 元/公斤",
        "per_piece": "{v} 元/件",
        "origin_of": "来源：{name}",
        "batch": "批次号",
        "goods_code": "商品编码",
        "entry_date": "进场日期",
        "origin": "产地",
        "cert_no": "检疫/产地证号",
        "entry_trader": "进场经营户",
        "entry_market": "进场市场",
        "upstream": "上游追溯码",
        "upstream_market": "上游市场",
        "hop": "上一环节（第 {n} 环）：{market}",
        "hop_date": "批发日期",
        "hop_seller": "批发经营户",
        "stop_state": "交易状态",
        "trading": "正常",
        "stopped": "已中止交易",
        "no_entry": "未找到进场登记",
        "alert_title": "注意：该商品批次已被中止交易",
        "alert_stopped": "{goods}（批次 {batch}）：自 {since} 起中止交易，原因：{reason}。",
        "alert_after_stop": "{goods}（批次 {batch}）：本次销售发生在中止交易之后。",
        "alert_also_after_stop": "本次销售发生在中止交易之后。",
        "alert_advice": "请暂停食用，保留小票和商品，向市场或拨打 12315 投诉举报。",
        "complaint": "投诉举报",
        "complaint_national": "全国市场监管投诉举报热线 12315",
        "complaint_market": "{market} 投诉电话 {phone}",
        "switch": "English",
        "lookup": "查询追溯信息",
        "lookup_hint": "请输入小票上的追溯码（20 位数字）。",
        "lookup_button": "查询",
        "bad_code_title": "追溯码无效",
        "bad_code": "请核对小票上的追溯码（20 位数字）。",
        "no_sale_title": "未找到追溯信息",
        "no_sale": "没有追溯码为 {code} 的交易。",
        "bad_link_title": "商品条码无效",
        "bad_link": "这个链接中的商品条码（GTIN）或批次号无效：{problem}",
        "bad_gtin": "GTIN 的校验位不对或位数不对",
        "bad_lot": "批次号应为 1-20 位字母或数字",
        "no_batch_title": "未找到该批次",
        "no_batch": "没有商品条码 {gtin}、批次号 {lot} 的进场登记。",
        "no_lot_title": "缺少批次号",
        "no_lot": "请扫描带有批次号的商品二维码。",
        "not_found_title": "页面不存在",
        "not_found": "这里没有您要找的页面。",
        "too_many_title": "请求过于频繁",
        "too_many": "请稍候 {seconds} 秒再试。",
        "flag_batch_overdrawn": "该批次销售量超过进场登记数量，已报警核查。",
        "flag_unknown_batch": "部分商品未找到进场登记。",
        "flag_seller_unregistered": "经营户未在市场实名登记。",
        "flag_seller_card_mismatch": "经营户卡号与登记不符，已报警核查。",
        "flag_trace_code_reused": "该追溯码被多笔交易使用，已报警核查。",
        "flag_source_unknown": "进场登记的上游凭证暂未找到对应的批发交易，已报警核查。",
        "flag_source_over_quantity": "进场数量超过上游凭证售出数量，已报警核查。",
    },
    "en": {
        "html_lang": "en",
        "site": "Meat and vegetable traceability",
        "trace_title": "Trace code {code}",
        "batch_title": "Batch {code}",
        "receipt": "Receipt",
        "trace_code": "Trace code",
        "tran_id": "Transaction no.",
        "time": "Time of sale",
        "market": "Market",
        "seller": "Trader",
        "stall": "Stall",
        "items": "Items",
        "goods": "Goods",
        "quantity": "Weight / count",
        "price": "Unit price",
        "amount": "Amount",
        "total": "Total",
        "kg": "{v} kg",
        "pieces": "{v} pcs",
        "yuan": "¥{v}",
        "per_kg": "¥{v}/kg",
        "per_piece": "¥{v}/pc",
        "origin_of": "Origin: {name}",
        "batch": "Batch",
        "goods_code": "Goods code",
        "entry_date": "Entered market",
        "origin": "Origin",
        "cert_no": "Quarantine / origin certificate",
        "entry_trader": "Registered by",
        "entry_market": "Market of entry",
        "upstream": "Upstream trace code",
        "upstream_market": "Upstream market",
        "hop": "One step back (hop {n}): {market}",
        "hop_date": "Wholesale date",
        "hop_seller": "Wholesale trader",
        "stop_state": "Trading",
        "trading": "Allowed",
        "stopped": "Stopped",
        "no_entry": "No entry registration found",
        "alert_title": "Warning: trading of this batch has been stopped",
        "alert_stopped": "{goods} (batch {batch}): stopped since {since}. Reason: {reason}.",
        "alert_after_stop": "{goods} (batch {batch}): this sale took place after the stop order.",
        "alert_also_after_stop": "This sale took place after the stop order.",
        "alert_advice": "Do not eat it; keep the receipt and the goods and complain to the "
        "market or call 12315.",
        "complaint": "Complaints",
        "complaint_national": "National market supervision complaint line 12315",
        "complaint_market": "{market} complaint line {phone}",
        "switch": "中文",
        "lookup": "Look up a trace code",
        "lookup_hint": "Enter the trace code on your receipt (20 digits).",
        "lookup_button": "Look up",
        "bad_code_title": "Not a trace code",
        "bad_code": "Please check the trace code on the receipt (20 digits).",
        "no_sale_title": "Nothing found",
        "no_sale": "No sale has the trace code {code}.",
        "bad_link_title": "Not a valid product code",
        "bad_link": "The product code (GTIN) or batch in this link is not valid: {problem}",
        "bad_gtin": "the GTIN's length or check digit is wrong",
        "bad_lot": "a batch is 1-20 letters or digits",
        "no_batch_title": "Batch not found",
        "no_batch": "No entry registered goods {gtin} under batch {lot}.",
        "no_lot_title": "Batch missing",
        "no_lot": "Please scan the product's QR code that carries its batch.",
        "not_found_title": "Page not found",
        "not_found": "There is no such page here.",
        "too_many_title": "Too many requests",
        "too_many": "Please wait {seconds} seconds and try again.",
        "flag_batch_overdrawn": "More was sold from this batch than was registered; the "
        "market supervisors have been alerted.",
        "flag_unknown_batch": "Some goods have no entry registration.",
        "flag_seller_unregistered": "The trader is not registered with the market.",
        "flag_seller_card_mismatch": "The trader's card does not match the registry; the "
        "market supervisors have been alerted.",
        "flag_trace_code_reused": "This trace code was used by several sales; the market "
        "supervisors have been alerted.",
        "flag_source_unknown": "The upstream receipt named on entry has not been matched to a "
        "wholesale sale yet; the market supervisors have been alerted.",
        "flag_source_over_quantity": "More was registered on entry than the upstream receipt "
        "sold; the market supervisors have been alerted.",
    },
}

# Flags of a trace chain shown as notes (the stop flags have the alert block of their own).
NOTE_FLAGS = (
    "batch_overdrawn",
    "unknown_batch",
    "seller_unregistered",
    "seller_card_mismatch",
    "trace_code_reused",
    "source_unknown",
    "source_over_quantity",
)

STYLESHEET = """\
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;padding:0 1rem 2rem;font-family:"Noto Sans CJK SC","PingFang SC",
"Microsoft YaHei",system-ui,sans-serif;line-height:1.5;color:#1a1a1a;background:#fff;
overflow-wrap:anywhere}
main{max-width:40rem;margin:0 auto}
header{max-width:40rem;margin:0 auto;padding:.75rem 0;display:flex;gap:1rem;
justify-content:space-between;align-items:baseline;border-bottom:1px solid #ccc}
header .site{font-weight:bold}
h1{font-size:1.35rem;margin:1rem 0 .5rem}
h2{font-size:1.15rem;margin:1.5rem 0 .5rem;border-bottom:2px solid #1a1a1a;padding-bottom:.2rem}
h3{font-size:1.05rem;margin:1.25rem 0 .4rem}
table{border-collapse:collapse;width:100%;table-layout:auto}
th,td{text-align:left;padding:.4rem .3rem;border-bottom:1px solid #ccc;vertical-align:top}
th{font-weight:normal;color:#444}
table.kv th{width:38%}
table.items th{font-weight:bold;color:#1a1a1a}
table.items td.num,table.items th.num{text-align:right;white-space:nowrap}
tfoot td,tfoot th{font-weight:bold;color:#1a1a1a;border-bottom:none}
.code{font-family:ui-monospace,"Noto Sans Mono",monospace;color:#444}
.alert{border:3px solid #b00020;border-left-width:.6rem;background:#fff0f0;color:#5c0011;
padding:.75rem 1rem;margin:1rem 0;border-radius:4px}
.alert h2{border:none;margin:0 0 .4rem;color:#8a0018;font-size:1.2rem}
.alert p,.alert ul{margin:.3rem 0}
.note{background:#fff7e0;border-left:.4rem solid #8a5a00;color:#3d2800;padding:.5rem .75rem;
margin:.5rem 0}
.stopped{color:#8a0018;font-weight:bold}
.nowrap{white-space:nowrap}
a{color:#0645ad}
a:focus{outline:3px solid #1a1a1a;outline-offset:2px}
ul.tel{list-style:none;padding:0}
ul.tel li{margin:.4rem 0}
ul.tel a{display:inline-block;padding:.4rem 0;font-size:1.1rem}
form{display:flex;flex-wrap:wrap;gap:.5rem}
label{width:100%}
input{font-size:1.1rem;padding:.4rem;border:1px solid #555;flex:1 1 12rem;min-width:0}
button{font-size:1.1rem;padding:.4rem 1rem;border:1px solid #0645ad;background:#0645ad;
color:#fff;border-radius:3px}
footer{max-width:40rem;margin:2rem auto 0;font-size:.9rem;color:#444}
"""

_TEL = re.compile(r"[^0-9+\-]")


def lang_of(value: str | None) -> str:
    """A supported language from ``?lang=``; Chinese unless English is asked for."""
    return "en" if value is not None and value.lower().startswith("en") else "zh"


def _t(lang: str, key: str, **values: object) -> str:
    text = STRINGS[lang][key]
    return text.format(**values) if values else text


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _h(lang: str, key: str, **values: str) -> str:
    """The string ``key`` as HTML with ``values`` already HTML (escaped by the caller)."""
    return _e(STRINGS[lang][key]).format(**values)


def _keep(text: str) -> str:
    """``text`` escaped, kept on one line (a date, a phone number)."""
    return f'<span class="nowrap">{_e(text)}</span>'


def _named(name: str | None, code: str) -> str:
    """``名称（CODE）`` with the code set apart, or the code alone; escaped."""
    if not name:
        return f'<span class="code">{_e(code)}</span>'
    return f'{_e(name)} <span class="code">({_e(code)})</span>'


def _market(p: Place | None) -> str:
    return "" if p is None else _named(p.name, p.code)


def _trader(t: PublicTrader | None) -> str:
    return "" if t is None else _named(t.name, t.code)


def _kv(lang: str, rows: Iterable[tuple[str, str]]) -> str:
    """A two-column table; ``rows`` hold (string key, HTML already escaped); empty skipped."""
    cells = "".join(
        f'<tr><th scope="row">{_e(_t(lang, k))}</th><td>{v}</td></tr>' for k, v in rows if v
    )
    return f'<table class="kv">{cells}</table>'


def _link(lang: str, path: str) -> str:
    return path + ("?lang=en" if lang == "en" else "")


def page(lang: str, title: str, body: str, switch_path: str | None = None) -> str:
    """A whole page: header with the language switch, ``body`` (HTML), footer."""
    other = "zh" if lang == "en" else "en"
    switch = ""
    if switch_path is not None:
        href = switch_path + ("?lang=en" if other == "en" else "?lang=zh")
        hl = STRINGS[other]["html_lang"]
        switch = f'<a href="{_e(href)}" lang="{hl}" hreflang="{hl}">{_e(_t(lang, "switch"))}</a>'
    return (
        f'<!DOCTYPE html>\n<html lang="{_t(lang, "html_lang")}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="referrer" content="no-referrer">'
        f"<title>{_e(title)} · {_e(_t(lang, 'site'))}</title>"
        f'<link rel="stylesheet" href="{CSS_PATH}"></head>'
        f'<body><header><span class="site">{_e(_t(lang, "site"))}</span>{switch}</header>'
        f"<main>{body}</main></body></html>\n"
    )


def message_page(lang: str, title_key: str, text_key: str, **values: object) -> str:
    title = _t(lang, title_key)
    return page(lang, title, f"<h1>{_e(title)}</h1><p>{_e(_t(lang, text_key, **values))}</p>")


def lookup_page(lang: str) -> str:
    """The start page: a form for the trace code on the receipt."""
    title = _t(lang, "lookup")
    hidden = '<input type="hidden" name="lang" value="en">' if lang == "en" else ""
    body = (
        f"<h1>{_e(title)}</h1>"
        f'<form method="get" action="/t">{hidden}'
        f'<label for="code">{_e(_t(lang, "lookup_hint"))}</label>'
        '<input id="code" name="code" inputmode="numeric" autocomplete="off" '
        'pattern="[0-9]{20}" maxlength="20" required>'
        f'<button type="submit">{_e(_t(lang, "lookup_button"))}</button></form>'
    )
    return page(lang, title, body, "/")


def _quantity(lang: str, ln: PublicLine) -> tuple[str, str]:
    if ln.mode == "weighed":
        return _t(lang, "kg", v=kg(ln.weight_g)), _t(lang, "per_kg", v=yuan(ln.price_fen_per_kg))
    count = "" if ln.pieces is None else _t(lang, "pieces", v=ln.pieces)
    return count, _t(lang, "per_piece", v=yuan(ln.price_fen_per_piece))


def _stop_text(lang: str, stop: PublicStop | None) -> str:
    if stop is None:
        return _e(_t(lang, "trading"))
    return f'<span class="stopped">{_e(_t(lang, "stopped"))}</span>'


def _alert(lang: str, items: list[tuple[str, str, PublicStop | None, bool]]) -> str:
    """The warning block: each (goods, batch, stop in force, sold after a stop)."""
    lines = []
    for goods, batch, stop, after in items:
        said = []
        if stop is not None:
            said.append(
                _h(lang, "alert_stopped", goods=_e(goods), batch=_keep(batch),
                   since=_keep(stop.since), reason=_e(stop.reason))
            )  # fmt: skip
        if after and said:
            said.append(_h(lang, "alert_also_after_stop"))
        elif after:
            said.append(_h(lang, "alert_after_stop", goods=_e(goods), batch=_keep(batch)))
        if said:
            lines.append(f"<li>{' '.join(said)}</li>")
    if not lines:
        return ""
    return (
        '<section class="alert" role="alert" aria-labelledby="alert-title">'
        f'<h2 id="alert-title">{_e(_t(lang, "alert_title"))}</h2>'
        f"<ul>{''.join(lines)}</ul><p>{_e(_t(lang, 'alert_advice'))}</p></section>"
    )


def _complaints(lang: str, lines: list[Complaint]) -> str:
    items = []
    for c in lines:
        tel = _TEL.sub("", c.number)
        if c.market is None:
            text = _e(_t(lang, "complaint_national"))
        else:
            text = _h(lang, "complaint_market", market=_e(c.market), phone=_keep(c.number))
        items.append(f'<li><a href="tel:{_e(tel)}">{text}</a></li>')
    return (
        f'<section aria-labelledby="complaint"><h2 id="complaint">{_e(_t(lang, "complaint"))}'
        f'</h2><ul class="tel">{"".join(items)}</ul></section>'
    )


def _batch_rows(lang: str, b: PublicBatch, with_goods: bool) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    if with_goods and b.goods_name is not None:
        rows.append(("goods", _named(b.goods_name, b.goods_code or "")))
    rows.append(("batch", f'<span class="code">{_e(b.batch_id)}</span>'))
    if not b.registered:
        rows.append(("entry_date", _e(_t(lang, "no_entry"))))
    rows += [
        ("origin", _e(b.origin or "")),
        ("cert_no", _e(b.cert_no or "")),
        ("entry_date", _e(b.entry_date or "")),
        ("entry_trader", _trader(b.trader)),
        ("stall", _e(b.trader.stall or "") if b.trader is not None else ""),
        ("entry_market", _market(b.market)),
    ]
    if b.upstream is not None:
        up = b.upstream
        href = _link(lang, f"/t/{up.trace_code}")
        rows.append(("upstream_market", _market(up.market)))
        rows.append(("upstream", f'<a class="code" href="{_e(href)}">{_e(up.trace_code)}</a>'))
    rows.append(("stop_state", _stop_text(lang, b.stop)))
    return rows


def _hops(lang: str, hops: list[PublicHop], n: int) -> str:
    """Every hop back to the origin, nearest first (the walk is bounded at the collector)."""
    parts: list[str] = []
    for h in hops:
        href = _link(lang, f"/t/{h.trace_code}")
        rows = [
            ("upstream", f'<a class="code" href="{_e(href)}">{_e(h.trace_code)}</a>'),
            ("hop_date", _e(h.date)),
            ("hop_seller", _trader(h.seller)),
        ]
        if h.batch is not None:
            rows += _batch_rows(lang, h.batch, with_goods=False)
        title = _t(lang, "hop", n=n, market=h.market.name or h.market.code)
        parts.append(f"<h3>{_e(title)}</h3>{_kv(lang, rows)}")
        if h.batch is not None:
            parts.append(_hops(lang, h.batch.hops, n + 1))
    return "".join(parts)


def _notes(lang: str, flags: list[str]) -> str:
    return "".join(
        f'<p class="note">{_e(_t(lang, "flag_" + f))}</p>' for f in NOTE_FLAGS if f in flags
    )


def trace_page(view: PublicTrace, lang: str = "zh") -> str:
    """What a shopper sees after scanning the receipt's QR code."""
    title = _t(lang, "trace_title", code=view.trace_code)
    parts = [f"<h1>{_e(title)}</h1>"]
    parts.append(
        _alert(
            lang,
            [
                (ln.goods_name, ln.batch.batch_id, ln.batch.stop, ln.sold_after_stop)
                for ln in view.lines
            ],
        )
    )
    parts.append(_notes(lang, view.warnings))
    parts.append(f"<h2>{_e(_t(lang, 'receipt'))}</h2>")
    parts.append(
        _kv(
            lang,
            [
                ("trace_code", f'<span class="code">{_e(view.trace_code)}</span>'),
                ("tran_id", f'<span class="code">{_e(view.tran_id)}</span>'),
                ("time", _e(view.time)),
                ("market", _market(view.market)),
                ("seller", _trader(view.seller)),
                ("stall", _e(view.seller.stall or "")),
            ],
        )
    )
    head = "".join(
        f'<th scope="col"{cls}>{_e(_t(lang, k))}</th>'
        for k, cls in (
            ("goods", ""),
            ("quantity", ' class="num"'),
            ("price", ' class="num"'),
            ("amount", ' class="num"'),
        )
    )
    rows = []
    for ln in view.lines:
        qty, price = _quantity(lang, ln)
        rows.append(
            f'<tr><th scope="row">{_e(ln.goods_name)}</th><td class="num">{_e(qty)}</td>'
            f'<td class="num">{_e(price)}</td>'
            f'<td class="num">{_e(_t(lang, "yuan", v=yuan(ln.amount_fen)))}</td></tr>'
        )
    total = _e(_t(lang, "yuan", v=yuan(view.total_fen)))
    parts.append(
        f'<h2 id="items">{_e(_t(lang, "items"))}</h2>'
        f'<table class="items" aria-labelledby="items"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody>"
        f'<tfoot><tr><th scope="row" colspan="3">{_e(_t(lang, "total"))}</th>'
        f'<td class="num">{total}</td></tr></tfoot></table>'
    )
    for ln in view.lines:
        parts.append(f"<h2>{_e(_t(lang, 'origin_of', name=ln.goods_name))}</h2>")
        parts.append(_kv(lang, _batch_rows(lang, ln.batch, with_goods=False)))
        parts.append(_hops(lang, ln.batch.hops, 1))
    parts.append(_complaints(lang, view.complaints))
    return page(lang, title, "".join(parts), f"/t/{view.trace_code}")


def batch_page(answer: PublicBatchAnswer, path: str, lang: str = "zh") -> str:
    """A batch a product's GS1 Digital Link names; ``path`` is the link's own path."""
    b = answer.batch
    title = _t(lang, "batch_title", code=b.batch_id)
    parts = [f"<h1>{_e(b.goods_name or title)}</h1>"]
    parts.append(_alert(lang, [(b.goods_name or "", b.batch_id, b.stop, False)]))
    rows = [("goods_code", f'<span class="code">{_e(answer.gtin)}</span>')]
    rows += _batch_rows(lang, b, with_goods=False)
    parts.append(_kv(lang, rows))
    parts.append(_complaints(lang, answer.complaints))
    return page(lang, title, "".join(parts), path)
