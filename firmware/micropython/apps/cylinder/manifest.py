# Cylinder reader: UHF (Chafon) or HF (MFRC522) tags, MT-SICS filling scale, fill gate.
include("../../manifest.py")
package("te", files=["uhf.py", "scale.py", "sics_scale.py", "mfrc522.py"], base_path="../../lib")
package("drivers", files=["codecs/lines.py", "codecs/sics.py"], base_path="../../../..")
module("cylinder.py")
