#!/usr/bin/python3
"""Writes a CSV of N subscribers for import tests and the import benchmark.

Columns: email,name,city,plan,orders,score,joined (five attributes).
Names are Arabic, Thai and Latin; addresses are unique and in random order
(as real exports are), with a few IDN domains. Deterministic for a seed.

usage: gen_csv.py N OUTPUT [--seed S]
"""
import random
import sys

ARABIC_FIRST = ["ليلى", "محمد", "فاطمة", "أحمد", "نور", "يوسف", "سارة", "عمر", "مريم", "خالد"]
ARABIC_LAST = ["حداد", "الخطيب", "منصور", "السيد", "نصار", "العلي", "حسن", "الشامي"]
THAI_FIRST = ["สมชาย", "สมหญิง", "วิไล", "อรุณ", "จันทร์", "กมล", "ศิริ", "ธนา"]
THAI_LAST = ["ใจดี", "ศรีสุข", "วงศ์ไทย", "บุญมา", "แก้วมณี", "รัตนา"]
LATIN_FIRST = ["Anna", "Lucas", "Sofía", "Noah", "Élodie", "Mateo", "Zoë", "Jonas", "Inès"]
LATIN_LAST = ["Müller", "García", "Dubois", "Rossi", "Nowak", "O'Brien", "Silva", "Smith, Jr."]
CITIES = ["Cairo", "Dubai", "Bangkok", "Chiang Mai", "Paris", "Berlin", "Madrid", "Amman"]
PLANS = ["free", "pro", "business"]
# One address in 50 has an internationalised domain, as in real lists.
DOMAINS = ["example.com", "example.net", "mail.example.org", "example.co.th", "example.ae"] * 10 + [
    "bücher.example", "ตัวอย่าง.example"]


def main():
    n = int(sys.argv[1])
    out = sys.argv[2]
    seed = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--seed" else 1
    rnd = random.Random(seed)
    ids = list(range(n))
    rnd.shuffle(ids)
    with open(out, "w", encoding="utf-8", newline="") as f:
        f.write("email,name,city,plan,orders,score,joined\r\n")
        for i in ids:
            s = i % 3
            if s == 0:
                name = rnd.choice(ARABIC_FIRST) + " " + rnd.choice(ARABIC_LAST)
            elif s == 1:
                name = rnd.choice(THAI_FIRST) + " " + rnd.choice(THAI_LAST)
            else:
                name = rnd.choice(LATIN_FIRST) + " " + rnd.choice(LATIN_LAST)
            if '"' in name or "," in name:
                name = '"' + name.replace('"', '""') + '"'
            email = "user%d.%x@%s" % (i, rnd.getrandbits(24), DOMAINS[i % len(DOMAINS)])
            f.write("%s,%s,%s,%s,%d,%d.%d,2024-%02d-%02d\r\n" % (
                email, name, rnd.choice(CITIES), rnd.choice(PLANS), rnd.randrange(50),
                rnd.randrange(100), rnd.randrange(10), 1 + rnd.randrange(12),
                1 + rnd.randrange(28)))


if __name__ == "__main__":
    main()
