# Elevator sensor box: door, door zone, people, alarm, mains, inspection, rope encoder,
# technician cards (MFRC522).
include("../../manifest.py")
package("te", files=["mfrc522.py"], base_path="../../lib")
module("elevator.py")
