"""The Linux stall terminal: a settlement terminal on a small Linux box (USB scale, PC/SC
card reader, ESC/POS printer) that makes the same records as the MCU settlement app."""
