# Warehouse handheld: UHF reader (Chafon), barcode/QR scanner (lines), keypad, dispatch gate.
include("../../manifest.py")
package("te", files=["uhf.py", "r2000.py", "keypad.py"], base_path="../../lib")
package("wire", files=["checkdigit.py", "goods.py", "goods_records.py"], base_path="../../../..")
package(
    "drivers",
    files=["codecs/lines.py", "codecs/gs1.py", "codecs/barcode.py", "codecs/epc.py",
           "codecs/itemcodes.py", "codecs/r2000.py"],
    base_path="../../../..",
)
module("warehouse.py")
