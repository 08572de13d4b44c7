# Elevator sensor box: door, door zone, people, alarm, mains, inspection, rope encoder,
# technician cards (MFRC522).
include("../../manifest.py")
package("te", files=["mfrc522.py"], base_path="../../lib")
package("drivers", files=["codecs/elevator_rules.py"], base_path="../../../..")
module("elevator.py")
