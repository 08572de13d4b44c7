"""Every string the console shows, in Chinese (the default) and English.

``CATALOGUE[key] = (zh, en)``; a value may hold ``{name}`` fields filled by
:meth:`Translator.__call__`. The language comes from ``?lang=`` (which also sets the cookie
``te_lang``), then that cookie, else Chinese. Templates call ``_("key", name=value)``; a key
missing from the catalogue is a bug and raises ``KeyError`` (tests render every page).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"
LANG_COOKIE = "te_lang"
HTML_LANG = {"zh": "zh-CN", "en": "en"}

CATALOGUE: dict[str, tuple[str, str]] = {
    # layout
    "app.title": ("追溯边缘 · 监管控制台", "traceedge · supervision console"),
    "nav.label": ("主导航", "Main navigation"),
    "nav.skip": ("跳到正文", "Skip to content"),
    "nav.overview": ("总览", "Overview"),
    "nav.alarms": ("报警", "Alarms"),
    "nav.quarantine": ("隔离区", "Quarantine"),
    "nav.elevators": ("电梯", "Elevators"),
    "nav.cylinders": ("气瓶", "Cylinders"),
    "nav.markets": ("市场", "Markets"),
    "nav.recall": ("召回", "Recall"),
    "nav.warehouse": ("仓库", "Warehouse"),
    "nav.audit": ("审计日志", "Audit log"),
    "lang.label": ("语言", "Language"),
    "lang.switch": ("English", "中文"),
    "user.signed_in": ("{name}（{role}，范围 {scope}）", "{name} ({role}, scope {scope})"),
    "user.logout": ("退出", "Sign out"),
    "role.inspector": ("检查员", "inspector"),
    "role.operator": ("市场经营者", "market operator"),
    "role.admin": ("管理员", "administrator"),
    "role.monitor": ("监控", "monitor"),
    "common.none": ("无", "none"),
    "common.never": ("从未", "never"),
    "common.ago": ("{d}前", "{d} ago"),
    "common.filter": ("筛选", "Filter"),
    "common.all": ("全部", "all"),
    "common.yes": ("是", "yes"),
    "common.no": ("否", "no"),
    "common.more": ("更多", "More"),
    "common.older": ("更早的记录", "Older entries"),
    "common.unknown": ("未知", "unknown"),
    "common.table_scroll": ("表格（可横向滚动）", "Table (scrolls sideways)"),
    "common.saved": ("已保存。", "Saved."),
    "common.error": ("出错", "Error"),
    # login
    "login.title": ("登录", "Sign in"),
    "login.intro": (
        "请粘贴管理员发放的访问令牌（te_ 开头，由 traceedge collector token create 生成）。",
        "Paste the access token your administrator gave you "
        "(starts with te_, made by traceedge collector token create).",
    ),
    "login.token": ("访问令牌", "Access token"),
    "login.submit": ("登录", "Sign in"),
    "login.empty": ("请粘贴访问令牌。", "Please paste your access token."),
    "login.failed": ("令牌无效、已过期或已吊销。", "The token is invalid, expired or revoked."),
    "login.logged_out": ("已退出。", "Signed out."),
    "login.cross_site": (
        "登录请求来自其他网站，已拒绝。请直接打开本页登录。",
        "A sign-in posted from another site was refused; open this page and sign in here.",
    ),
    "login.csrf": ("表单已过期，请重新提交。", "The form expired; please submit it again."),
    # errors
    "error.forbidden": ("无权访问", "Not allowed"),
    "error.forbidden_text": (
        "您的角色无权查看此页面或执行此操作。",
        "Your role may not see this page or do this.",
    ),
    "error.not_found": ("未找到", "Not found"),
    "error.not_found_text": ("没有这个对象，或它不在您的范围内。", "No such thing in your scope."),
    # overview
    "overview.title": ("站点与设备总览", "Sites and devices"),
    "overview.summary": (
        "{sites} 个站点，{devices} 台设备：{red} 红，{amber} 黄，{green} 绿，{never} 从未上报。",
        "{sites} sites, {devices} devices: {red} red, {amber} amber, {green} green, "
        "{never} never seen.",
    ),
    "overview.legend": (
        "绿：{amber} 内有消息；黄：超过 {amber}；红：超过 {red} 或从未上报。",
        "Green: heard within {amber}; amber: silent over {amber}; red: silent over {red} or "
        "never seen.",
    ),
    "overview.sites": ("站点", "Sites"),
    "overview.devices": ("设备", "Devices"),
    "overview.filter_state": ("状态", "State"),
    "col.state": ("状态", "State"),
    "col.site": ("站点", "Site"),
    "col.name": ("名称", "Name"),
    "col.district": ("辖区", "District"),
    "col.kind": ("类型", "Kind"),
    "col.last_seen": ("最后上报", "Last seen"),
    "col.backlog": ("积压", "Backlog"),
    "col.backlog_age": ("积压最早", "Oldest queued"),
    "col.gaps": ("缺号", "Gaps"),
    "col.alarms": ("报警", "Alarms"),
    "col.device": ("设备", "Device"),
    "col.type": ("类型", "Type"),
    "col.records": ("记录数", "Records"),
    "col.key": ("密钥", "Key"),
    "col.when": ("时间", "When"),
    "col.detail": ("详情", "Detail"),
    "col.reason": ("原因", "Reason"),
    "col.ack": ("确认", "Acknowledged"),
    "col.seq": ("序号", "Seq"),
    "col.ts": ("采集时间", "Captured"),
    "col.batch": ("批次", "Batch"),
    "col.market": ("市场", "Market"),
    "col.goods": ("商品", "Goods"),
    "col.entered": ("进场", "Entered"),
    "col.sold": ("已售", "Sold"),
    "col.stock": ("库存", "Stock"),
    "col.stop": ("中止交易", "Stop order"),
    "col.actor": ("操作人", "Actor"),
    "col.role": ("角色", "Role"),
    "col.action": ("操作", "Action"),
    "col.target": ("对象", "Target"),
    "col.result": ("结果", "Result"),
    "col.address": ("地址", "Address"),
    "col.trace": ("追溯码", "Trace code"),
    "col.buyer": ("买方", "Buyer"),
    "col.seller": ("卖方", "Seller"),
    "col.quantity": ("数量", "Quantity"),
    "col.terminal": ("终端", "Terminal"),
    "col.elevator": ("电梯", "Elevator"),
    "col.fault": ("故障", "Fault"),
    "col.since": ("开始", "Since"),
    "col.cylinder": ("气瓶", "Cylinder"),
    "col.station": ("充装站", "Station"),
    "col.id": ("编号", "No."),
    "rag.green": ("绿 · 正常", "green · OK"),
    "rag.amber": ("黄 · 迟滞", "amber · late"),
    "rag.red": ("红 · 失联", "red · silent"),
    "rag.never": ("红 · 从未上报", "red · never seen"),
    # alarms and quarantine
    "alarms.title": ("报警", "Alarms"),
    "alarms.kind": ("报警类型", "Kind"),
    "alarms.show": ("显示", "Show"),
    "alarms.open": ("未确认", "open"),
    "alarms.acked": ("已确认", "acknowledged"),
    "alarms.ack": ("确认", "Acknowledge"),
    "alarms.comment": ("确认说明", "Comment"),
    "alarms.acked_by": ("{who} 于 {when} 确认：{comment}", "{who} at {when}: {comment}"),
    "alarms.none": ("没有符合条件的报警。", "No alarm matches."),
    "alarms.count": (
        "共 {total} 条，显示第 {first}–{last} 条。",
        "{total} in all, showing {first}–{last}.",
    ),
    "alarms.comment_for": ("第 {id} 条的确认说明", "Comment for #{id}"),
    "alarms.acked_ok": ("已确认。", "Acknowledged."),
    "alarms.already": ("已被他人确认。", "Already acknowledged."),
    "alarms.comment_missing": (
        "请填写确认说明（最多 1000 字）。",
        "Please write a comment (at most 1000 characters).",
    ),
    "quarantine.records": ("{n} 条记录", "{n} records"),
    "common.newer": ("较新的记录", "Newer entries"),
    "quarantine.title": ("隔离区", "Quarantine"),
    "quarantine.none": ("没有符合条件的隔离记录。", "Nothing quarantined matches."),
    # device
    "overview.cut": (
        "只显示前 {shown} 台设备（共 {total} 台），请用筛选。",
        "Showing the first {shown} of {total} devices; use the filter.",
    ),
    "overview.green_hidden": (
        "另有 {n} 台设备状态正常（绿），未列出。",
        "{n} more devices are green and not listed.",
    ),
    "overview.show_all": ("显示全部设备", "Show every device"),
    "device.watermark": ("连续到 {n}", "contiguous to {n}"),
    "device.unregistered": ("未注册", "not registered"),
    "device.more_gaps": ("还有更多缺号区间。", "There are more gaps."),
    "col.received": ("入库时间", "Stored"),
    "key.state": ("第 {keys} 把密钥，自序号 {seq} 起", "key {keys}, from seq {seq}"),
    "key.revoked": ("已吊销（自序号 {seq}）", "revoked (from seq {seq})"),
    "device.title": ("设备 {dev}", "Device {dev}"),
    "device.records": ("最近记录", "Latest records"),
    "device.gaps": ("缺号区间", "Missing sequence ranges"),
    "device.no_gaps": ("无缺号。", "No gaps."),
    "device.key": ("密钥状态", "Key state"),
    "device.registry": ("注册信息", "Registry"),
    # elevators
    "elevators.title": ("电梯", "Elevators"),
    "elevators.open_faults": ("未排除的故障", "Open faults"),
    "elevators.trapped": ("困人事件", "Trapped-passenger events"),
    "elevators.none_open": ("没有未排除的故障。", "No open fault."),
    "elevators.none_trapped": ("没有困人事件。", "No trapped-passenger event."),
    "elevators.open": ("未解除", "open"),
    "elevators.cleared": ("已解除 {when}", "cleared {when}"),
    # cylinders
    "cylinders.title": ("气瓶：扣留或拒充", "Cylinders held or refused"),
    "cylinders.none": ("这段时间没有拒充记录。", "No refusal in this period."),
    "elevators.more": (
        "只列出最紧急的 {n} 部电梯（困人优先，其次故障最新的）。",
        "Listing the {n} most urgent elevators (trapped passengers first, then the newest fault).",
    ),
    "elevators.duration": ("持续", "Lasted"),
    "elevators.floor": ("{n} 层", "floor {n}"),
    "elevators.alarm": ("报警", "alarm"),
    "cylinders.held": ("被扣留的气瓶", "Cylinders held"),
    "cylinders.none_held": ("没有被扣留的气瓶。", "No cylinder is held."),
    "cylinders.refused": ("充装拒绝记录", "Fill-gate refusals"),
    "cylinders.owner": ("产权单位", "Owner"),
    "cylinders.stage": ("阶段", "Stage"),
    "cylinders.pre": ("充装前拒充", "refused before filling"),
    "cylinders.post": ("充装后扣留", "held after filling"),
    "cylinders.more": ("只显示最新 {n} 条。", "Showing the newest {n}."),
    "common.days": ("时间范围", "Period"),
    "common.last_days": ("最近 {n} 天", "last {n} days"),
    # markets
    "markets.title": ("市场批次与库存", "Market batches and stock"),
    "markets.stops": ("正在执行的中止交易令", "Stop orders in force"),
    "markets.no_stops": ("没有中止交易令。", "No stop order in force."),
    "markets.batches": ("批次", "Batches"),
    "markets.search": ("批次号", "Batch code"),
    "markets.none": ("没有批次。", "No batch."),
    "markets.stopped": ("已中止：{reason}", "Stopped: {reason}"),
    "markets.trading": ("正常交易", "trading"),
    "batch.title": ("批次 {batch}", "Batch {batch}"),
    "batch.entry": ("进场登记", "Entry"),
    "batch.no_entry": ("未找到进场登记。", "No entry registration found."),
    "batch.origin": ("产地", "Origin"),
    "batch.cert": ("检疫/产地证号", "Certificate"),
    "batch.stop_form": ("中止交易", "Stop trading"),
    "batch.lift_form": ("解除中止交易", "Lift the stop"),
    "batch.reason": ("原因（必填）", "Reason (required)"),
    "batch.stop_submit": ("中止该批次交易", "Stop this batch"),
    "batch.lift_submit": ("解除中止", "Lift the stop"),
    "batch.stop_in_force": (
        "该批次已于 {when} 被中止交易：{reason}",
        "This batch was stopped at {when}: {reason}",
    ),
    "batch.relayed": ("已下发到市场终端。", "Relayed to the market terminals."),
    "batch.not_relayed": (
        "已记录，但尚未下发到终端（收集器稍后重试）。",
        "Recorded, but not yet relayed to the terminals (the collector retries).",
    ),
    "batch.stopped_ok": ("已中止交易。", "Trading stopped."),
    "batch.already_stopped": (
        "该批次已被中止，原命令保持有效。",
        "Already stopped; the first order stands.",
    ),
    "batch.lifted_ok": ("已解除中止交易。", "The stop order was lifted."),
    "batch.not_stopped": ("该批次没有正在执行的中止令。", "This batch has no stop order in force."),
    "batch.reason_missing": ("请填写原因。", "Please give a reason."),
    "batch.sold_after_stop": ("中止后售出 {n} 笔", "{n} sold after the stop"),
    "batch.recall_link": ("查看召回影响范围", "Recall reach"),
    # warehouse (collector/whviews.py)
    "warehouse.title": ("仓库库存", "Warehouse stock"),
    "warehouse.stock": ("库存", "Stock"),
    "warehouse.class": ("类别", "Class"),
    "warehouse.product": ("品名", "Product"),
    "warehouse.unit": ("单位", "Unit"),
    "warehouse.lots": ("有库存的批号", "Lots in stock"),
    "warehouse.lot": ("批号", "Lot"),
    "warehouse.items": ("件数", "Items"),
    "warehouse.none": ("没有库存。", "Nothing in stock."),
    "movements.title": ("出入库记录", "Movements"),
    "movements.item": ("物品编码", "Item id"),
    "movements.none": ("没有出入库记录。", "No movements."),
    "report.title": ("待报公安的销售", "Sales to report to public security"),
    "report.explain": (
        "剧毒化学品、易制爆化学品的销售须在 5 日内报所在地县级公安机关备案；已报的请勾选并标记。",
        "Sales of highly toxic and precursor chemicals must be reported to the county public "
        "security office within 5 days; tick those reported and mark them.",
    ),
    "report.csv": ("下载 CSV", "Download CSV"),
    "report.tick": ("选择", "Select"),
    "report.handler": ("经办人 / 身份证号", "Handler / ID number"),
    "report.licence": ("许可证号", "Licence"),
    "report.licence_overdrawn": ("各站合计超量", "overdrawn across sites"),
    "report.use": ("用途", "Use"),
    "report.due": ("报告期限", "Due"),
    "report.days_left": ("剩 {n} 天", "{n} day(s) left"),
    "report.overdue": ("逾期 {n} 天", "{n} day(s) overdue"),
    "report.none": ("没有待报的销售。", "No sales to report."),
    "report.note": ("备案回执或说明", "Receipt number or note"),
    "report.mark": ("标记为已报", "Mark reported"),
    "report.marked": ("已标记 {n} 笔为已报。", "{n} sale(s) marked reported."),
    "report.none_ticked": ("没有勾选任何销售。", "No sale was ticked."),
    "report.note_missing": ("请填写备案回执或说明。", "Give a receipt number or a note."),
    "report.unknown": (
        "所选销售不存在或不在您的范围内。",
        "A sale ticked is unknown or outside your scope.",
    ),
    # licences
    "licences.title": ("购买许可证", "Purchase licences"),
    "licences.explain": (
        "可在您范围内站点使用的许可证：各站已售数量、所有站点合计与许可数量比较。"
        "各站断网时各自放行，合计可能超量，超量的许可证标红。",
        "The licences that may be presented at a site in your scope: what left against each "
        "at each site and at all its sites together, against its quantity. Sites cut off "
        "from the centre decide alone and can overdraw a licence together: flagged red.",
    ),
    "licences.only_overdrawn": ("只看超量的", "Overdrawn only"),
    "licences.holder": ("持证单位/人", "Holder"),
    "licences.quantity": ("许可数量", "Licensed quantity"),
    "licences.valid": ("有效期", "Valid"),
    "licences.sites": ("适用站点", "Sites"),
    "licences.every_site": ("所有站点", "every site"),
    "licences.used_here": ("各站已售", "Used per site"),
    "licences.used_total": ("合计已售", "Used in total"),
    "licences.remaining": ("剩余", "Remaining"),
    "licences.over_by": ("超出 {n} {unit}", "over by {n} {unit}"),
    "licences.overdrawn": ("超量", "OVERDRAWN"),
    "licences.expired": ("已过期", "expired"),
    "licences.not_yet": ("尚未生效", "not yet valid"),
    "licences.none": ("没有许可证。", "No licences."),
    "licences.back": ("← 全部许可证", "← All licences"),
    "licences.kind_toxic_purchase": ("剧毒化学品购买许可证", "toxic chemicals purchase"),
    "licences.kind_precursor_purchase": ("易制爆/易制毒购买备案", "precursor purchase"),
    "licences.kind_business": ("经营许可证", "business licence"),
    "licences.kind_other": ("其他", "other"),
    "licence.title": ("许可证 {licence}", "Licence {licence}"),
    "licence.overdrawn_text": (
        "各站合计已售 {total} {unit}，超过许可数量 {quantity} {unit}。",
        "Its sites together let {total} {unit} leave, above its {quantity} {unit}.",
    ),
    "licence.use": ("各站已售", "Use per site"),
    "licence.no_use": ("您范围内的站点尚无销售。", "Nothing left against it at your sites."),
    "licence.not_current": (
        "此许可证当前不适用于您范围内的站点；以下为其历史版本和销售。",
        "This licence is no longer valid at a site in your scope; its versions and sales follow.",
    ),
    "licence.versions": ("导入的各个版本（最早在前）", "Versions as imported (oldest first)"),
    "licence.version": ("版本", "Version"),
    "licence.imported": ("导入时间", "Imported"),
    "licence.changed": ("与上一版本相比的变更", "Changed from the version before"),
    "licence.first": ("首次导入", "first import"),
    "licence.field_quantity": ("数量", "quantity"),
    "licence.field_valid": ("有效期", "validity"),
    "licence.field_sites": ("站点", "sites"),
    "licence.field_classes": ("类别", "classes"),
    "licence.field_kind": ("种类", "kind"),
    "licence.field_holder": ("持证单位/人", "holder"),
    "licence.sales": ("凭此许可证的销售（最新在前）", "Sales against it (newest first)"),
    "licence.no_sales": ("您范围内没有凭此许可证的销售。", "No sales against it in your scope."),
    "licence.decision": ("放行决定", "Dispatch decision"),
    "licence.reg_ver": ("依据许可证版本 {v}", "decided against registry version {v}"),
    "licence.used_then": (
        "当时本站已售 {here}，他站 {elsewhere}",
        "used then here {here}, elsewhere {elsewhere}",
    ),
    "licence.decision_missing": ("放行记录 #{seq} 尚未收到", "dispatch record #{seq} not received"),
    # recall
    "recall.title": ("召回影响评估：批次 {batch}", "Recall reach: batch {batch}"),
    "recall.pick": ("输入批次号查看销售范围", "Enter a batch code to see its reach"),
    "recall.summary": (
        "共 {sales} 笔销售，{qty}，{terminals} 台终端，{buyers} 个已知买方，"
        "时间 {first} 至 {last}。",
        "{sales} sales, {qty}, {terminals} terminals, {buyers} known buyers, from {first} to "
        "{last}.",
    ),
    "recall.none": ("该批次没有销售记录。", "No sale of this batch."),
    "recall.csv": ("下载 CSV", "Download CSV"),
    "recall.buyer_unknown": ("散客", "walk-in"),
    "markets.only_stopped": ("中止状态", "Stop state"),
    "markets.stopped_only": ("仅已中止", "stopped only"),
    "markets.overdrawn": ("超售", "overdrawn"),
    "batch.pieces": ("件", "pieces"),
    "batch.stop_confirm": ("确定中止该批次的交易？", "Stop trading this batch?"),
    "batch.lift_confirm": ("确定解除该批次的中止交易？", "Lift the stop on this batch?"),
    "batch.sales": ("销售明细（共 {n} 笔）", "Sales ({n} lines)"),
    "batch.balance": ("结余", "Balance"),
    "batch.after_stop": ("中止后售出", "sold after stop"),
    "batch.more_sales": (
        "只显示前 {shown} 笔（共 {total} 笔）；召回页和 CSV 列出全部。",
        "Showing {shown} of {total} lines; the recall page and its CSV list them all.",
    ),
    "recall.open": ("查看", "Open"),
    "recall.stopped": ("已中止交易的批次", "Stopped batches"),
    "recall.after_stop": (
        "中止交易后仍售出 {n} 笔，{qty}，{amount} 元。",
        "{n} lines sold after the stop: {qty}, {amount} yuan.",
    ),
    "recall.batch_link": ("批次与库存", "Batch and stock"),
    "recall.downstream": (
        "下游流向（卡单同行）",
        "Downstream (the voucher travels with the buyer)",
    ),
    "recall.downstream_none": (
        "没有下游市场登记该批次的货物。",
        "No market downstream entered goods of this batch.",
    ),
    "recall.hop": ("环节", "Hop"),
    "recall.from_trace": ("上游追溯码", "Upstream trace code"),
    "recall.downstream_sales": ("下游销售明细", "Downstream sales"),
    "batch.upstream": ("上游来源（卡单同行）", "Upstream (voucher travels with the buyer)"),
    "batch.upstream_sale": ("上游交易", "Upstream sale"),
    "recall.chain_flags": ("链路告警（卡单同行）", "Chain flags (upstream receipts)"),
    "recall.chain_flags_none": (
        "没有链路告警：每个登记了上游凭证的批次都已对上批发交易。",
        "No chain flags: every entry naming an upstream receipt matches a wholesale sale.",
    ),
    "recall.amount": ("金额", "Amount"),
    "recall.yuan": ("元", "yuan"),
    "recall.buyers": ("{known} / {lines} 笔有买方信息", "{known} of {lines} lines name a buyer"),
    "recall.terminals": ("交易终端", "Terminals"),
    "recall.lines": ("笔数", "Lines"),
    "recall.first": ("首笔", "First"),
    "recall.last": ("末笔", "Last"),
    "recall.sales": ("每笔销售", "Every sale"),
    "recall.truncated": (
        "页面只显示前 {n} 笔；CSV 含全部。",
        "The page shows the first {n}; the CSV has all.",
    ),
    # audit
    "audit.title": ("审计日志", "Audit log"),
    "audit.none": ("没有审计记录。", "No audit entry."),
    "audit.chain_ok": ("哈希链完整（{n} 条）。", "Hash chain intact ({n} entries)."),
    "audit.chain_bad": ("哈希链损坏：{detail}", "Hash chain broken: {detail}"),
}


# Codes the records and the collector use (faults, alarm kinds, refusal and quarantine
# reasons), named for people; a code not listed here is shown as it is.
TERMS: dict[str, tuple[str, str]] = {
    # elevator faults (TSG T7001 / GB/T 24476 terms)
    "trapped_in_zone": ("平层关人", "trapped in the door zone"),
    "trapped_out_of_zone": ("非平层关人", "trapped outside the door zone"),
    "stop_outside_door_zone": ("门区外停梯", "stopped outside the door zone"),
    "door_open_while_moving": ("开门走车", "moving with the door open"),
    "overtravel_top": ("冲顶", "overtravel at the top"),
    "overtravel_bottom": ("蹲底", "overtravel at the bottom"),
    "overspeed": ("超速", "overspeed"),
    "power_loss": ("停电", "power loss"),
    "safety_circuit_open": ("安全回路断路", "safety circuit open"),
    "door_lock_circuit_open": ("门锁回路断路", "door lock circuit open"),
    "door_fails_to_open": ("开门故障", "door fails to open"),
    "door_fails_to_close": ("关门故障", "door fails to close"),
    "alarm_button": ("轿内报警按钮", "car alarm button"),
    # cylinder fill-gate reasons
    "inspection_overdue": ("超期未检", "inspection overdue"),
    "not_this_station": ("非本站气瓶", "not this station's cylinder"),
    "unregistered": ("未登记", "not registered"),
    "no_residual_pressure": ("无余压", "no residual pressure"),
    "damaged": ("外观损伤", "damaged"),
    "registration_mismatch": ("登记信息不符", "registration mismatch"),
    "scrapped": ("已报废", "scrapped"),
    "design_life_exceeded": ("超设计使用年限", "design life exceeded"),
    "wrong_medium": ("介质不符", "wrong medium"),
    "overfilled": ("超装", "overfilled"),
    "leaking": ("泄漏", "leaking"),
    # alarms raised by the collector
    "sold_after_stop": ("中止交易后售出", "sold after a stop order"),
    "batch_overdrawn": ("批次超售", "batch overdrawn"),
    "batch_entry_duplicate": ("批次重复进场登记", "batch registered twice"),
    "conflict": ("同号不同内容", "same identity, different content"),
    "forward_held": ("暂缓上报平台", "held back from the platform"),
    "internal_error": ("内部错误", "internal error"),
    # quarantine reasons
    "mac": ("校验码不符", "MAC does not verify"),
    "unknown_device": ("未知设备", "unknown device"),
    "unknown_gateway": ("未知网关", "unknown gateway"),
    "wrong_site": ("站点不符", "wrong site"),
    "revoked": ("设备已吊销", "device revoked"),
    "oversized": ("超长", "oversized"),
    "compression": ("解压失败", "cannot decompress"),
    "json": ("格式错误", "not JSON"),
    "envelope": ("信封错误", "bad envelope"),
    "encoding": ("编码错误", "bad encoding"),
    "version": ("协议版本不符", "wrong wire version"),
    "schema": ("字段不符合规范", "fails its schema"),
    "mixed": ("多种原因", "several reasons"),
}


@dataclass(frozen=True)
class Translator:
    lang: str

    def __call__(self, key: str, **fields: object) -> str:
        zh, en = CATALOGUE[key]
        text = en if self.lang == "en" else zh
        return text.format(**fields) if fields else text

    def term(self, code: str | None) -> str:
        """A code (fault, alarm kind, reason) in words; an unknown code as it is."""
        if code is None:
            return "-"
        pair = TERMS.get(code)
        if pair is None:
            return code
        return pair[1] if self.lang == "en" else pair[0]

    @property
    def html_lang(self) -> str:
        return HTML_LANG[self.lang]


def pick_lang(request: Request) -> tuple[str, bool]:
    """The language of this request, and whether it came from ``?lang=`` (to be remembered
    in the cookie)."""
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return asked, True
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in LANGS:
        return cookie, False
    return DEFAULT_LANG, False
