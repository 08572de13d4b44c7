# Settlement scale terminal: CAS ECR price-computing scale, MFRC522 cards, 4x4 keypad,
# ESC/POS receipt printer; trace codes and their check digit from the wire contract.
include("../../manifest.py")
package(
    "te",
    files=["scale.py", "cas_scale.py", "keypad.py", "mfrc522.py"],
    base_path="../../lib",
)
package("drivers", files=["codecs/cas_ecr.py", "codecs/receipt.py"], base_path="../../../..")
package("wire", files=["checkdigit.py", "settlement.py", "tracecode.py"], base_path="../../../..")
module("settlement.py")
