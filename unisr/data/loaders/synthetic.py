"""Seeded synthetic marketplace: catalog, user sequences and a query log with realistic structure.

The default dataset of ``unisr quickstart`` and of fast tests. Items live in a three-level
category tree (Kitchen > Cookware > Frying Pans) with per-leaf vocabulary, so titles of a leaf
share words and titles across leaves differ; brands specialise in one or two top categories;
popularity is Zipf-like within each leaf. Users have 1-3 preferred top categories and a few
favourite brands; their next item stays in the leaf, moves to a sibling leaf or jumps to another
preferred category. A configured share of engagements is preceded by a search whose text mixes
the leaf noun (or a synonym), an attribute of the item, sometimes the brand or subcategory.

Everything is drawn from one ``numpy.random.default_rng(seed)``: the same config gives the same
``RawData``, byte for byte.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from unisr.data.schema import Item, QueryLogEvent, RawData, UserSequence
from unisr.errors import UnisrError

# --------------------------------------------------------------------------------------------
# Vocabulary. A leaf is (category name, title noun, synonyms, adjectives, variants, features,
# (min price, max price)). Adjectives and variants go into titles and queries, features into
# descriptions, synonyms into queries only.
# --------------------------------------------------------------------------------------------

Leaf = tuple[str, str, tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[float, float]]

CATEGORY_TREE: tuple[tuple[str, tuple[tuple[str, tuple[Leaf, ...]], ...]], ...] = (
    (
        "Kitchen",
        (
            (
                "Cookware",
                (
                    (
                        "Frying Pans",
                        "Frying Pan",
                        ("skillet", "fry pan"),
                        ("Non-stick", "Cast Iron", "Stainless Steel", "Ceramic", "Hard-anodised", "Induction"),
                        ("20 cm", "24 cm", "28 cm", "30 cm"),
                        ("a riveted stay-cool handle", "even heat distribution", "a scratch-resistant coating"),
                        (15, 95),
                    ),
                    (
                        "Saucepans",
                        "Saucepan",
                        ("sauce pot", "milk pan"),
                        ("Stainless Steel", "Copper", "Non-stick", "Tri-ply", "Enamelled", "Induction"),
                        ("1.5 L", "2 L", "3 L", "16 cm"),
                        ("a tempered glass lid", "a pouring lip", "a thick encapsulated base"),
                        (18, 120),
                    ),
                    (
                        "Stock Pots",
                        "Stock Pot",
                        ("soup pot", "stockpot"),
                        ("Stainless Steel", "Enamelled", "Heavy-duty", "Aluminium", "Tall", "Induction"),
                        ("6 L", "8 L", "10 L", "12 L"),
                        ("sturdy side handles", "a heavy base that prevents scorching", "a vented lid"),
                        (25, 140),
                    ),
                ),
            ),
            (
                "Cutlery",
                (
                    (
                        "Chef Knives",
                        "Chef Knife",
                        ("cooks knife", "kitchen knife"),
                        ("Japanese", "German Steel", "Damascus", "Forged", "Ultra-sharp", "Full-tang"),
                        ("15 cm", "20 cm", "23 cm"),
                        ("a high-carbon steel blade", "an ergonomic pakkawood handle", "a precision-ground edge"),
                        (20, 180),
                    ),
                    (
                        "Knife Sets",
                        "Knife Set",
                        ("knife block", "cutlery set"),
                        ("Stainless", "Forged", "Professional", "Magnetic", "Black", "Colour-coded"),
                        ("5-piece", "8-piece", "12-piece", "15-piece"),
                        ("a wooden storage block", "a built-in sharpener", "dishwasher-safe blades"),
                        (35, 250),
                    ),
                    (
                        "Cutting Boards",
                        "Cutting Board",
                        ("chopping board", "chopping block"),
                        ("Bamboo", "Walnut", "Acacia", "Plastic", "Reversible", "Non-slip"),
                        ("Small", "Medium", "Large", "Set of 3"),
                        ("a juice groove", "non-slip rubber feet", "a knife-friendly surface"),
                        (10, 70),
                    ),
                ),
            ),
            (
                "Small Appliances",
                (
                    (
                        "Blenders",
                        "Blender",
                        ("smoothie maker", "liquidiser"),
                        ("High-speed", "Personal", "Countertop", "Glass Jar", "Quiet", "Portable"),
                        ("600 W", "1000 W", "1200 W", "1.5 L"),
                        ("stainless steel blades", "a pulse function", "a BPA-free jug"),
                        (30, 300),
                    ),
                    (
                        "Toasters",
                        "Toaster",
                        ("bread toaster", "toaster oven"),
                        ("2-slice", "4-slice", "Stainless Steel", "Retro", "Long-slot", "Wide-slot"),
                        ("Black", "Silver", "Cream", "Red"),
                        ("a defrost setting", "a removable crumb tray", "variable browning control"),
                        (20, 110),
                    ),
                    (
                        "Coffee Makers",
                        "Coffee Maker",
                        ("coffee machine", "espresso machine"),
                        ("Drip", "Espresso", "Programmable", "Single-serve", "Bean-to-cup", "Pour-over"),
                        ("1.2 L", "1.5 L", "10-cup", "12-cup"),
                        ("a keep-warm hot plate", "a reusable filter", "a built-in milk frother"),
                        (35, 450),
                    ),
                ),
            ),
        ),
    ),
    (
        "Sports & Outdoors",
        (
            (
                "Camping",
                (
                    (
                        "Tents",
                        "Tent",
                        ("dome tent", "shelter"),
                        ("Waterproof", "Lightweight", "Pop-up", "Backpacking", "Family", "Instant"),
                        ("2-person", "3-person", "4-person", "6-person"),
                        ("taped seams", "a double-layer rainfly", "colour-coded poles"),
                        (40, 400),
                    ),
                    (
                        "Sleeping Bags",
                        "Sleeping Bag",
                        ("sleep sack", "camping bag"),
                        ("Down", "Mummy", "3-season", "Ultralight", "Synthetic", "Compact"),
                        ("Regular", "Long", "-5 C", "0 C"),
                        ("a draft collar", "a two-way zip", "a compression stuff sack"),
                        (25, 260),
                    ),
                    (
                        "Camping Stoves",
                        "Camping Stove",
                        ("gas burner", "backpacking stove"),
                        ("Portable", "Compact", "Butane", "Folding", "Windproof", "Two-burner"),
                        ("3000 W", "Single", "Double", "Mini"),
                        ("piezo ignition", "an adjustable flame", "a carry case"),
                        (20, 150),
                    ),
                ),
            ),
            (
                "Cycling",
                (
                    (
                        "Bike Helmets",
                        "Bike Helmet",
                        ("cycling helmet", "bicycle helmet"),
                        ("Road", "Mountain", "Commuter", "Aero", "Lightweight", "Ventilated"),
                        ("Small", "Medium", "Large", "Matte Black"),
                        ("a MIPS liner", "18 air vents", "an adjustable fit dial"),
                        (30, 220),
                    ),
                    (
                        "Bike Lights",
                        "Bike Light",
                        ("bicycle lamp", "cycle light"),
                        ("Rechargeable", "LED", "Front", "Rear", "Waterproof", "USB"),
                        ("400 lm", "800 lm", "1200 lm", "Set of 2"),
                        ("a quick-release mount", "multiple flash modes", "USB-C charging"),
                        (12, 90),
                    ),
                    (
                        "Cycling Gloves",
                        "Cycling Gloves",
                        ("bike gloves", "riding gloves"),
                        ("Padded", "Fingerless", "Full-finger", "Gel", "Winter", "Breathable"),
                        ("Small", "Medium", "Large", "X-Large"),
                        ("gel palm padding", "touchscreen fingertips", "a terry thumb wipe"),
                        (10, 60),
                    ),
                ),
            ),
            (
                "Fitness",
                (
                    (
                        "Yoga Mats",
                        "Yoga Mat",
                        ("exercise mat", "pilates mat"),
                        ("Non-slip", "Extra-thick", "Eco-friendly", "Cork", "Travel", "Cushioned"),
                        ("4 mm", "6 mm", "8 mm", "10 mm"),
                        ("a carrying strap", "a textured grip surface", "alignment lines"),
                        (15, 110),
                    ),
                    (
                        "Dumbbells",
                        "Dumbbell",
                        ("hand weight", "free weight"),
                        ("Adjustable", "Hex", "Neoprene", "Cast Iron", "Rubber", "Chrome"),
                        ("2 kg", "5 kg", "10 kg", "Pair"),
                        ("a knurled grip", "anti-roll hexagonal heads", "a quick-change dial"),
                        (15, 350),
                    ),
                    (
                        "Resistance Bands",
                        "Resistance Band",
                        ("exercise band", "loop band"),
                        ("Latex", "Fabric", "Heavy", "Long", "Mini", "Tube"),
                        ("Set of 3", "Set of 5", "11-piece", "Single"),
                        ("door anchors", "padded handles", "a mesh storage bag"),
                        (8, 50),
                    ),
                ),
            ),
        ),
    ),
    (
        "Electronics",
        (
            (
                "Audio",
                (
                    (
                        "Headphones",
                        "Headphones",
                        ("headset", "over-ear headphones"),
                        ("Wireless", "Noise-cancelling", "Over-ear", "Studio", "Foldable", "Bluetooth"),
                        ("Black", "White", "Midnight Blue", "Silver"),
                        ("30-hour battery life", "memory-foam ear cushions", "active noise cancellation"),
                        (25, 400),
                    ),
                    (
                        "Bluetooth Speakers",
                        "Bluetooth Speaker",
                        ("wireless speaker", "portable speaker"),
                        ("Waterproof", "Portable", "Rugged", "Mini", "Smart", "360-degree"),
                        ("10 W", "20 W", "40 W", "Blue"),
                        ("a 12-hour battery", "IPX7 water resistance", "stereo pairing"),
                        (20, 300),
                    ),
                    (
                        "Earbuds",
                        "Earbuds",
                        ("earphones", "in-ear headphones"),
                        ("True Wireless", "Sport", "Noise-cancelling", "Waterproof", "Compact", "Low-latency"),
                        ("Black", "White", "Graphite", "Sand"),
                        ("a wireless charging case", "touch controls", "secure ear hooks"),
                        (15, 280),
                    ),
                ),
            ),
            (
                "Computer Accessories",
                (
                    (
                        "Keyboards",
                        "Keyboard",
                        ("typing keyboard", "computer keyboard"),
                        ("Mechanical", "Wireless", "Ergonomic", "Backlit", "Compact", "Low-profile"),
                        ("UK Layout", "US Layout", "Full-size", "TKL"),
                        ("hot-swappable switches", "RGB backlighting", "a detachable USB-C cable"),
                        (20, 220),
                    ),
                    (
                        "Computer Mice",
                        "Mouse",
                        ("computer mouse", "mice"),
                        ("Wireless", "Ergonomic", "Gaming", "Silent", "Vertical", "Bluetooth"),
                        ("Black", "Grey", "White", "16000 DPI"),
                        ("programmable side buttons", "a rechargeable battery", "a precision optical sensor"),
                        (10, 140),
                    ),
                    (
                        "Monitors",
                        "Monitor",
                        ("display", "computer screen"),
                        ("4K", "Curved", "IPS", "Ultrawide", "Gaming", "Portable"),
                        ("24 inch", "27 inch", "32 inch", "34 inch"),
                        ("a height-adjustable stand", "a 144 Hz refresh rate", "built-in speakers"),
                        (120, 900),
                    ),
                ),
            ),
            (
                "Phone Accessories",
                (
                    (
                        "Phone Cases",
                        "Phone Case",
                        ("phone cover", "protective case"),
                        ("Shockproof", "Slim", "Clear", "Leather", "Wallet", "Silicone"),
                        ("iPhone 15", "Galaxy S24", "Pixel 8", "iPhone 14"),
                        ("raised camera edges", "a soft microfibre lining", "MagSafe compatibility"),
                        (8, 60),
                    ),
                    (
                        "Chargers",
                        "Charger",
                        ("charging plug", "power adapter"),
                        ("Fast", "USB-C", "Wireless", "Dual-port", "GaN", "Magnetic"),
                        ("20 W", "30 W", "65 W", "100 W"),
                        ("overheat protection", "a foldable plug", "multi-device charging"),
                        (10, 80),
                    ),
                    (
                        "Screen Protectors",
                        "Screen Protector",
                        ("tempered glass", "screen guard"),
                        ("Privacy", "Anti-glare", "Matte", "Edge-to-edge", "Ultra-clear", "Anti-blue"),
                        ("2-pack", "3-pack", "iPhone 15", "Galaxy S24"),
                        ("an installation frame", "9H hardness", "a bubble-free adhesive"),
                        (5, 35),
                    ),
                ),
            ),
        ),
    ),
    (
        "Home & Garden",
        (
            (
                "Bedding",
                (
                    (
                        "Duvets",
                        "Duvet",
                        ("comforter", "quilt"),
                        ("Goose Down", "Hypoallergenic", "All-season", "Lightweight", "Microfibre", "Wool"),
                        ("Single", "Double", "King", "Super King"),
                        ("box-stitched baffles", "a cotton percale cover", "corner ties"),
                        (30, 260),
                    ),
                    (
                        "Pillows",
                        "Pillow",
                        ("bed pillow", "cushion"),
                        ("Memory Foam", "Feather", "Orthopaedic", "Cooling", "Hollowfibre", "Firm"),
                        ("Standard", "King Size", "Pair", "Set of 4"),
                        ("a removable washable cover", "adjustable fill", "a breathable bamboo case"),
                        (12, 90),
                    ),
                    (
                        "Bed Sheets",
                        "Bed Sheet",
                        ("fitted sheet", "sheet set"),
                        ("Egyptian Cotton", "Linen", "Percale", "Sateen", "Bamboo", "Brushed Cotton"),
                        ("Single", "Double", "King", "Super King"),
                        ("deep elasticated pockets", "a 400 thread count", "a crisp cool finish"),
                        (15, 150),
                    ),
                ),
            ),
            (
                "Lighting",
                (
                    (
                        "Desk Lamps",
                        "Desk Lamp",
                        ("reading lamp", "table lamp"),
                        ("LED", "Dimmable", "Adjustable", "Architect", "Clip-on", "Wireless-charging"),
                        ("Black", "White", "Brass", "Grey"),
                        ("a flexible gooseneck", "five colour temperatures", "a touch dimmer"),
                        (15, 150),
                    ),
                    (
                        "Floor Lamps",
                        "Floor Lamp",
                        ("standing lamp", "uplighter"),
                        ("Arc", "Tripod", "Industrial", "Dimmable", "Scandinavian", "Torchiere"),
                        ("Black", "Brass", "Walnut", "White"),
                        ("a weighted marble base", "a linen drum shade", "a foot switch"),
                        (35, 300),
                    ),
                    (
                        "LED Bulbs",
                        "LED Bulb",
                        ("light bulb", "lightbulb"),
                        ("Smart", "Dimmable", "Warm White", "Daylight", "Filament", "Energy-saving"),
                        ("E27", "B22", "GU10", "4-pack"),
                        ("a 15000-hour lifespan", "app control", "flicker-free light"),
                        (4, 45),
                    ),
                ),
            ),
            (
                "Garden Tools",
                (
                    (
                        "Pruning Shears",
                        "Pruning Shears",
                        ("secateurs", "garden clippers"),
                        ("Bypass", "Anvil", "Ratchet", "Heavy-duty", "Titanium", "Ergonomic"),
                        ("20 cm", "22 cm", "Pair", "Small"),
                        ("SK5 steel blades", "a safety lock", "a sap groove"),
                        (8, 60),
                    ),
                    (
                        "Garden Hoses",
                        "Garden Hose",
                        ("hosepipe", "water hose"),
                        ("Expandable", "Heavy-duty", "Kink-free", "Retractable", "Rubber", "Lightweight"),
                        ("15 m", "20 m", "30 m", "50 m"),
                        ("brass fittings", "a 10-pattern spray gun", "a wall-mounted reel"),
                        (15, 120),
                    ),
                    (
                        "Watering Cans",
                        "Watering Can",
                        ("plant waterer", "watering pot"),
                        ("Galvanised", "Plastic", "Indoor", "Long-spout", "Copper", "Stackable"),
                        ("1 L", "5 L", "10 L", "Green"),
                        ("a detachable rose head", "a balanced handle", "a long reach spout"),
                        (6, 60),
                    ),
                ),
            ),
        ),
    ),
    (
        "Beauty & Personal Care",
        (
            (
                "Skin Care",
                (
                    (
                        "Moisturisers",
                        "Moisturiser",
                        ("face cream", "day cream"),
                        ("Hydrating", "Oil-free", "Fragrance-free", "Anti-ageing", "Night", "Sensitive"),
                        ("50 ml", "75 ml", "100 ml", "Travel Size"),
                        ("hyaluronic acid", "ceramides", "a lightweight non-greasy texture"),
                        (6, 70),
                    ),
                    (
                        "Sunscreens",
                        "Sunscreen",
                        ("sun cream", "sunblock"),
                        ("Mineral", "SPF 50", "Water-resistant", "Tinted", "Sport", "Kids"),
                        ("50 ml", "100 ml", "200 ml", "Spray"),
                        ("broad-spectrum UVA and UVB protection", "zinc oxide", "a non-sticky finish"),
                        (5, 40),
                    ),
                    (
                        "Face Cleansers",
                        "Face Cleanser",
                        ("face wash", "facial cleanser"),
                        ("Foaming", "Gentle", "Gel", "Exfoliating", "Micellar", "Charcoal"),
                        ("150 ml", "200 ml", "400 ml", "Refill"),
                        ("salicylic acid", "soothing aloe vera", "a pH-balanced formula"),
                        (5, 35),
                    ),
                ),
            ),
            (
                "Hair Care",
                (
                    (
                        "Shampoos",
                        "Shampoo",
                        ("hair wash", "cleansing shampoo"),
                        ("Sulphate-free", "Anti-dandruff", "Volumising", "Moisturising", "Clarifying", "Colour-safe"),
                        ("250 ml", "400 ml", "1 L", "2-pack"),
                        ("argan oil", "biotin", "a salon-grade formula"),
                        (4, 30),
                    ),
                    (
                        "Hair Dryers",
                        "Hair Dryer",
                        ("blow dryer", "hairdryer"),
                        ("Ionic", "Compact", "Professional", "Travel", "Ceramic", "Diffuser"),
                        ("1800 W", "2000 W", "2200 W", "Black"),
                        ("a cool shot button", "three heat settings", "a concentrator nozzle"),
                        (20, 350),
                    ),
                    (
                        "Hair Brushes",
                        "Hair Brush",
                        ("paddle brush", "detangling brush"),
                        ("Boar Bristle", "Detangling", "Paddle", "Round", "Vented", "Wooden"),
                        ("Small", "Large", "Pink", "Set of 2"),
                        ("flexible nylon pins", "a cushioned base", "an anti-static finish"),
                        (5, 45),
                    ),
                ),
            ),
            (
                "Oral Care",
                (
                    (
                        "Electric Toothbrushes",
                        "Electric Toothbrush",
                        ("sonic toothbrush", "rechargeable toothbrush"),
                        ("Sonic", "Rotating", "Rechargeable", "Smart", "Whitening", "Travel"),
                        ("Black", "White", "Pink", "Twin Pack"),
                        ("a 2-minute timer", "a pressure sensor", "five cleaning modes"),
                        (20, 250),
                    ),
                    (
                        "Toothpastes",
                        "Toothpaste",
                        ("tooth paste", "dental paste"),
                        ("Whitening", "Fluoride", "Sensitive", "Herbal", "Charcoal", "Enamel-repair"),
                        ("75 ml", "100 ml", "3-pack", "Travel Size"),
                        ("fluoride protection", "a fresh mint flavour", "enamel-strengthening minerals"),
                        (2, 15),
                    ),
                    (
                        "Dental Floss",
                        "Dental Floss",
                        ("floss picks", "tooth floss"),
                        ("Waxed", "Mint", "Expanding", "PTFE", "Unwaxed", "Biodegradable"),
                        ("50 m", "100 m", "3-pack", "6-pack"),
                        ("a refillable glass case", "a shred-resistant fibre", "a cool mint coating"),
                        (2, 20),
                    ),
                ),
            ),
        ),
    ),
    (
        "Pet Supplies",
        (
            (
                "Dog Supplies",
                (
                    (
                        "Dog Beds",
                        "Dog Bed",
                        ("pet bed", "dog cushion"),
                        ("Orthopaedic", "Calming", "Waterproof", "Memory Foam", "Raised", "Donut"),
                        ("Small", "Medium", "Large", "X-Large"),
                        ("a removable washable cover", "a non-slip base", "raised bolster edges"),
                        (20, 160),
                    ),
                    (
                        "Dog Leashes",
                        "Dog Leash",
                        ("dog lead", "lead"),
                        ("Retractable", "Reflective", "Nylon", "Leather", "Hands-free", "Bungee"),
                        ("1.2 m", "1.8 m", "5 m", "8 m"),
                        ("a padded handle", "a swivel clasp", "reflective stitching"),
                        (8, 50),
                    ),
                    (
                        "Dog Toys",
                        "Dog Toy",
                        ("chew toy", "squeaky toy"),
                        ("Squeaky", "Indestructible", "Rope", "Interactive", "Plush", "Rubber"),
                        ("Small", "Medium", "Large", "3-pack"),
                        ("tough natural rubber", "a treat-dispensing centre", "reinforced seams"),
                        (4, 30),
                    ),
                ),
            ),
            (
                "Cat Supplies",
                (
                    (
                        "Cat Litter",
                        "Cat Litter",
                        ("kitty litter", "litter"),
                        ("Clumping", "Unscented", "Crystal", "Tofu", "Wood Pellet", "Low-dust"),
                        ("5 L", "10 L", "15 L", "20 L"),
                        ("strong odour control", "fast clumping granules", "a biodegradable formula"),
                        (5, 40),
                    ),
                    (
                        "Scratching Posts",
                        "Scratching Post",
                        ("cat scratcher", "scratch post"),
                        ("Sisal", "Tall", "Cardboard", "Wall-mounted", "Corner", "Weighted"),
                        ("50 cm", "70 cm", "90 cm", "Grey"),
                        ("natural sisal rope", "a dangling toy", "a stable weighted base"),
                        (10, 70),
                    ),
                    (
                        "Cat Trees",
                        "Cat Tree",
                        ("cat tower", "cat condo"),
                        ("Multi-level", "Modern", "Large", "Compact", "Wall-mounted", "Plush"),
                        ("80 cm", "120 cm", "150 cm", "Beige"),
                        ("cosy hideaway condos", "sisal-wrapped posts", "a padded top perch"),
                        (30, 200),
                    ),
                ),
            ),
            (
                "Aquarium",
                (
                    (
                        "Fish Tanks",
                        "Fish Tank",
                        ("aquarium", "fishbowl"),
                        ("Glass", "Nano", "Starter", "Curved", "Rimless", "Tropical"),
                        ("20 L", "40 L", "60 L", "120 L"),
                        ("an LED light hood", "a built-in filter", "an included heater"),
                        (25, 300),
                    ),
                    (
                        "Aquarium Filters",
                        "Aquarium Filter",
                        ("fish tank filter", "water filter"),
                        ("Internal", "Canister", "Hang-on", "Sponge", "Silent", "Adjustable"),
                        ("200 L/h", "400 L/h", "800 L/h", "1200 L/h"),
                        ("multi-stage filtration", "an adjustable flow rate", "replaceable media"),
                        (10, 160),
                    ),
                    (
                        "Fish Food",
                        "Fish Food",
                        ("fish flakes", "fish pellets"),
                        ("Tropical", "Goldfish", "Sinking", "Floating", "Algae", "Freeze-dried"),
                        ("50 g", "100 g", "250 g", "500 g"),
                        ("vitamin-enriched flakes", "colour-enhancing spirulina", "a no-cloud formula"),
                        (3, 25),
                    ),
                ),
            ),
        ),
    ),
)

BRAND_NAMES: tuple[str, ...] = (
    "Norvik",
    "Aldenway",
    "Brightwell",
    "Castelmar",
    "Dunmore",
    "Elvora",
    "Fernhill",
    "Glimmer",
    "Halden",
    "Ironbark",
    "Kestrel",
    "Lumora",
    "Marlowe",
    "Nordhaven",
    "Oakridge",
    "Pellora",
    "Quillon",
    "Rivenna",
    "Solbury",
    "Tarnwood",
    "Ulvane",
    "Veloria",
    "Westlake",
    "Yarrow",
    "Zephyra",
    "Arcwell",
    "Bramblecote",
    "Corvin",
    "Dovetail",
    "Emberly",
    "Fjordline",
    "Greystone",
    "Hollis",
    "Ivyline",
    "Kelso",
    "Larkspur",
    "Mistral",
    "Northwind",
    "Orrin",
    "Pinecrest",
    "Ravello",
    "Stonebridge",
    "Thornfield",
    "Valeon",
    "Wrenford",
    "Zentio",
    "Alpenglow",
    "Birchmoor",
)

# Words some searchers add that say nothing about the item.
QUERY_FILLERS: tuple[str, ...] = ("best", "cheap", "buy", "sale", "new", "good", "quality", "deal")

# Description templates: an opening sentence and an optional second one.
_DESCRIPTION_OPENERS = (
    "{article} {adj} {noun} from {brand} with {feature}.",
    "This {adj} {noun} by {brand} features {feature}.",
    "{brand}'s {adj} {noun} combines {feature} and {feature2}.",
    "Designed by {brand}, this {adj} {noun} offers {feature}.",
)
_DESCRIPTION_CLOSERS = (
    "Part of our {sub} range, available in {variant}.",
    "Also comes with {feature3}.",
    "A reliable choice for everyday {top} needs.",
    "Available in {variant}.",
)

MAX_TOP = len(CATEGORY_TREE)
MAX_SUB = min(len(subs) for _, subs in CATEGORY_TREE)
MAX_LEAF = min(len(leaves) for _, subs in CATEGORY_TREE for _, leaves in subs)


@dataclass
class SyntheticConfig:
    """Knobs of the synthetic marketplace; ``generate_marketplace(SyntheticConfig(**options))``."""

    seed: int = 0  # seed of the single numpy Generator every draw comes from
    n_users: int = 600  # number of users, each with one sequence
    n_items: int = 400  # catalog size before dropping items no user engaged with
    n_top_categories: int = 4  # top-level categories (at most 6), e.g. Kitchen
    n_subcategories: int = 3  # subcategories per top category (at most 3), e.g. Cookware
    n_leaf_categories: int = 3  # leaf categories per subcategory (at most 3), e.g. Frying Pans
    n_brands: int = 30  # brands (at most 48); each specialises in one or two top categories
    min_seq_len: int = 5  # shortest user sequence
    max_seq_len: int = 25  # longest user sequence; lengths are skewed towards the short end
    seq_len_skew: float = 3.0  # beta(1, skew) shape of the length distribution; larger = shorter
    p_same_leaf: float = 0.55  # chance the next item stays in the current leaf category
    p_sibling_leaf: float = 0.25  # chance the next item is in a sibling leaf (same subcategory)
    p_jump: float = 0.20  # chance the next item is in a random preferred top category
    popularity_exponent: float = 1.0  # Zipf exponent of item popularity within a leaf
    brand_affinity: float = 4.0  # weight multiplier of a user's favourite brands
    repeat_penalty: float = 0.15  # weight multiplier of items already in the user's history
    search_share: float = 0.3  # share of engagements preceded by a search (query log event)
    start_timestamp: int = 1_672_531_200  # earliest first engagement (2023-01-01 UTC), seconds
    start_spread: int = 180 * 86_400  # users start uniformly within this many seconds of the start
    mean_gap: int = 2 * 86_400  # mean seconds between a user's consecutive engagements

    def validate(self) -> None:
        """Raise ``UnisrError`` naming the first option that is out of range."""
        checks = (
            ("n_users", self.n_users >= 1, "at least 1"),
            ("n_items", self.n_items >= 2, "at least 2"),
            ("n_top_categories", 1 <= self.n_top_categories <= MAX_TOP, f"between 1 and {MAX_TOP}"),
            ("n_subcategories", 1 <= self.n_subcategories <= MAX_SUB, f"between 1 and {MAX_SUB}"),
            ("n_leaf_categories", 1 <= self.n_leaf_categories <= MAX_LEAF, f"between 1 and {MAX_LEAF}"),
            ("n_brands", 1 <= self.n_brands <= len(BRAND_NAMES), f"between 1 and {len(BRAND_NAMES)}"),
            ("min_seq_len", self.min_seq_len >= 2, "at least 2"),
            ("max_seq_len", self.max_seq_len >= self.min_seq_len, "at least min_seq_len"),
            ("seq_len_skew", self.seq_len_skew > 0, "positive"),
            ("p_same_leaf", self.p_same_leaf >= 0, "non-negative"),
            ("p_sibling_leaf", self.p_sibling_leaf >= 0, "non-negative"),
            ("p_jump", self.p_jump >= 0, "non-negative"),
            ("p_same_leaf + p_sibling_leaf + p_jump", abs(self.p_same_leaf + self.p_sibling_leaf + self.p_jump - 1.0) < 1e-6, "equal to 1"),
            ("popularity_exponent", self.popularity_exponent >= 0, "non-negative"),
            ("brand_affinity", self.brand_affinity > 0, "positive"),
            ("repeat_penalty", 0 <= self.repeat_penalty <= 1, "between 0 and 1"),
            ("search_share", 0 <= self.search_share <= 1, "between 0 and 1"),
            ("start_spread", self.start_spread >= 0, "non-negative"),
            ("mean_gap", self.mean_gap >= 1, "at least 1 second"),
        )
        for name, ok, expected in checks:
            if not ok:
                raise UnisrError(f"synthetic loader option {name} must be {expected}")


# Gaps between engagements are at least this long, and searches happen this many seconds before.
_MIN_GAP = 120
_QUERY_DELAY = (3, 90)


@dataclass
class _Leaf:
    top: int
    sub: int
    path: tuple[str, str, str]
    noun: str
    synonyms: tuple[str, ...]
    adjectives: tuple[str, ...]
    variants: tuple[str, ...]
    features: tuple[str, ...]
    price_range: tuple[float, float]
    items: list[int] = dataclasses.field(default_factory=list)
    siblings: list[int] = dataclasses.field(default_factory=list)  # leaves of the same subcategory
    cousins: list[int] = dataclasses.field(default_factory=list)  # leaves of the same top category


@dataclass
class _Item:
    leaf: int
    brand: int
    adjective: str
    variant: str
    title: str
    description: str
    price: str
    popularity: float


def _pick(rng: np.random.Generator, weights) -> int:
    """Index drawn proportionally to non-negative ``weights`` (at least one positive).

    Plain Python: the lists are short (one leaf's items), where numpy's per-call overhead dominates.
    """
    target = rng.random() * float(sum(weights))
    running = 0.0
    for index, weight in enumerate(weights):
        running += weight
        if target < running:
            return index
    return max(i for i, w in enumerate(weights) if w > 0)


def _build_tree(config: SyntheticConfig) -> list[_Leaf]:
    leaves: list[_Leaf] = []
    for t, (top_name, subs) in enumerate(CATEGORY_TREE[: config.n_top_categories]):
        for s, (sub_name, leaf_specs) in enumerate(subs[: config.n_subcategories]):
            for name, noun, synonyms, adjectives, variants, features, prices in leaf_specs[: config.n_leaf_categories]:
                leaves.append(
                    _Leaf(
                        t,
                        s,
                        (top_name, sub_name, name),
                        noun,
                        synonyms,
                        adjectives,
                        variants,
                        features,
                        (float(prices[0]), float(prices[1])),
                    )
                )
    return leaves


def _price(rng: np.random.Generator, low: float, high: float) -> str:
    """A log-uniform price in [low, high] with shop-like cents, as a string: "12.99"."""
    dollars = max(int(np.exp(rng.uniform(np.log(low), np.log(high)))), 1)
    cents = (0.99, 0.99, 0.49, 0.95, 0.0)[int(rng.integers(5))]
    return f"{dollars + cents:.2f}"


def _soft_lower(text: str) -> str:
    """Lower-case words except acronyms and model names (LED, USB-C, GaN, iPhone, 4K)."""
    return " ".join(w if any(c.isupper() for c in w[1:]) or any(c.isdigit() for c in w) else w.lower() for w in text.split())


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _describe(rng: np.random.Generator, leaf: _Leaf, brand: str, adjective: str, variant: str) -> str:
    """One or two sentences built from the leaf's features, the item's adjective and variant."""
    order = rng.permutation(len(leaf.features))
    adj = _soft_lower(adjective)
    values = {
        "article": _article(adj),
        "adj": adj,
        "noun": _soft_lower(leaf.noun),
        "brand": brand,
        "feature": leaf.features[int(order[0])],
        "feature2": leaf.features[int(order[1 % len(order)])],
        "feature3": leaf.features[int(order[2 % len(order)])],
        "sub": leaf.path[1].lower(),
        "variant": variant,
        "top": _soft_lower(leaf.path[0]),
    }
    text = _DESCRIPTION_OPENERS[int(rng.integers(len(_DESCRIPTION_OPENERS)))].format(**values)
    if rng.random() < 0.7:
        text += " " + _DESCRIPTION_CLOSERS[int(rng.integers(len(_DESCRIPTION_CLOSERS)))].format(**values)
    return text[0].upper() + text[1:]


def _make_items(rng: np.random.Generator, config: SyntheticConfig, leaves: list[_Leaf]) -> tuple[list[_Item], list[str]]:
    n_top = config.n_top_categories
    brands = list(BRAND_NAMES[: config.n_brands])
    # Each brand specialises in one or two top categories; brand b's first one cycles so every
    # top category has a brand whenever there are at least as many brands as top categories.
    top_order = rng.permutation(n_top)
    brand_tops: list[list[int]] = []
    for b in range(config.n_brands):
        tops = [int(top_order[b % n_top])]
        if n_top > 1 and rng.random() < 0.4:
            other = int(rng.integers(n_top - 1))
            tops.append(other + (other >= tops[0]))
        brand_tops.append(tops)
    brand_weight = rng.lognormal(0.0, 0.7, size=config.n_brands)  # some brands are bigger than others
    brands_of_top = [[b for b in range(config.n_brands) if t in brand_tops[b]] or list(range(config.n_brands)) for t in range(n_top)]

    # Items per leaf: at least one each while items last, the rest by Dirichlet shares.
    n_leaves = len(leaves)
    counts = np.zeros(n_leaves, dtype=int)
    base = min(config.n_items, n_leaves)
    counts[rng.permutation(n_leaves)[:base]] = 1
    if config.n_items > base:
        counts += rng.multinomial(config.n_items - base, rng.dirichlet(np.full(n_leaves, 4.0)))

    items: list[_Item] = []
    for index, leaf in enumerate(leaves):
        candidates = brands_of_top[leaf.top]
        weights = brand_weight[candidates]
        ranks = rng.permutation(int(counts[index]))
        used_titles: set[str] = set()
        for k in range(int(counts[index])):
            for _attempt in range(20):
                brand = candidates[_pick(rng, weights)]
                adjective = leaf.adjectives[int(rng.integers(len(leaf.adjectives)))]
                variant = leaf.variants[int(rng.integers(len(leaf.variants)))]
                title = f"{brands[brand]} {adjective} {leaf.noun} {variant}"
                if title not in used_titles:
                    break
            used_titles.add(title)
            description = _describe(rng, leaf, brands[brand], adjective, variant)
            price = _price(rng, *leaf.price_range)
            popularity = 1.0 / (int(ranks[k]) + 1) ** config.popularity_exponent
            leaf.items.append(len(items))
            items.append(_Item(index, brand, adjective, variant, title, description, price, popularity))
    return items, brands


def _link_leaves(leaves: list[_Leaf]) -> list[int]:
    """Fill siblings/cousins among non-empty leaves; return the non-empty leaves."""
    live = [i for i, leaf in enumerate(leaves) if leaf.items]
    for i in live:
        leaf = leaves[i]
        leaf.siblings = [j for j in live if j != i and leaves[j].top == leaf.top and leaves[j].sub == leaf.sub]
        leaf.cousins = [j for j in live if j != i and leaves[j].top == leaf.top and leaves[j].sub != leaf.sub]
    return live


def _make_sequences(
    rng: np.random.Generator, config: SyntheticConfig, leaves: list[_Leaf], items: list[_Item], live: list[int]
) -> tuple[list[list[int]], list[list[int]]]:
    live_tops = sorted({leaves[i].top for i in live})
    leaves_of_top = {t: [i for i in live if leaves[i].top == t] for t in live_tops}
    brands_of_top = {t: sorted({items[i].brand for j in leaves_of_top[t] for i in leaves[j].items}) for t in live_tops}
    stay, sibling = config.p_same_leaf, config.p_same_leaf + config.p_sibling_leaf

    sequences: list[list[int]] = []
    stamps: list[list[int]] = []
    for _user in range(config.n_users):
        # Tastes: 1-3 preferred top categories with Dirichlet weights, 1-3 favourite brands of them.
        n_pref = min(len(live_tops), 1 + int(rng.choice(3, p=[0.45, 0.35, 0.2])))
        prefs = [live_tops[int(i)] for i in rng.permutation(len(live_tops))[:n_pref]]
        pref_weights = rng.dirichlet(np.full(n_pref, 2.0)).tolist()
        pref_brands = sorted({b for t in prefs for b in brands_of_top[t]})
        favourites = {pref_brands[int(i)] for i in rng.permutation(len(pref_brands))[: 1 + int(rng.integers(3))]}
        weight = [item.popularity * (config.brand_affinity if item.brand in favourites else 1.0) for item in items]

        length = config.min_seq_len + int(round((config.max_seq_len - config.min_seq_len) * rng.beta(1.0, config.seq_len_skew)))
        sequence: list[int] = []
        leaf = -1
        previous = -1
        for step in range(length):
            move = rng.random() if step else 1.0  # the first item comes from a preferred category
            current = leaves[leaf] if step else None
            if current is not None and move < stay and len(current.items) > 1:
                pass  # same leaf
            elif current is not None and move < sibling and (current.siblings or current.cousins):
                related = current.siblings or current.cousins
                leaf = related[int(rng.integers(len(related)))]
            else:
                top = prefs[_pick(rng, pref_weights)]
                options = [j for j in leaves_of_top[top] if not (j == leaf and len(leaves[j].items) == 1)]
                if not options:  # a preferred category whose only item was the previous one
                    options = [j for j in live if not (j == leaf and len(leaves[j].items) == 1)] or live
                leaf = options[int(rng.integers(len(options)))]
            candidates = [i for i in leaves[leaf].items if i != previous]
            if not candidates:  # the leaf's only item was the previous one: any other item will do
                candidates = [i for i in range(len(items)) if i != previous]
            chosen = candidates[_pick(rng, [weight[i] for i in candidates])]
            weight[chosen] = max(weight[chosen] * config.repeat_penalty, 1e-12)  # repeats are rarer
            leaf = items[chosen].leaf
            previous = chosen
            sequence.append(chosen)
        start = config.start_timestamp + int(rng.integers(config.start_spread + 1))
        gaps = np.maximum(rng.exponential(config.mean_gap, size=length - 1).astype(np.int64), _MIN_GAP)
        sequences.append(sequence)
        stamps.append([start, *(start + np.cumsum(gaps)).tolist()])
    return sequences, stamps


def _cover_catalog(rng: np.random.Generator, items: list[_Item], sequences: list[list[int]]) -> None:
    """Swap engagements of repeatedly used items for unused items of the same leaf, in place.

    Items whose leaf offers no such engagement stay unused (and are dropped from the catalog).
    """
    counts = np.zeros(len(items), dtype=int)
    positions_of_leaf: dict[int, list[tuple[int, int]]] = {}
    for u, sequence in enumerate(sequences):
        for p, item in enumerate(sequence):
            counts[item] += 1
            positions_of_leaf.setdefault(items[item].leaf, []).append((u, p))
    for item in range(len(items)):
        if counts[item]:
            continue
        slots = [(u, p) for u, p in positions_of_leaf.get(items[item].leaf, []) if counts[sequences[u][p]] >= 2]
        if not slots:
            continue
        u, p = slots[int(rng.integers(len(slots)))]
        counts[sequences[u][p]] -= 1
        sequences[u][p] = item
        counts[item] = 1


def _query_text(rng: np.random.Generator, item: _Item, leaf: _Leaf, brand: str, style: np.ndarray) -> str:
    """2-4 lower-case words: the leaf noun or a synonym plus a few of the item's attributes."""
    p_synonym, p_brand, p_sub, p_variant = style
    noun = leaf.synonyms[int(rng.integers(len(leaf.synonyms)))] if rng.random() < p_synonym else leaf.noun
    # Segments (priority, words, before the noun); the lowest priorities are dropped first.
    segments: list[tuple[int, list[str], bool]] = [(9, noun.split(), True)]
    if rng.random() < 0.8:
        segments.append((6, item.adjective.split(), True))
    if rng.random() < p_brand:
        segments.append((5, brand.split(), True))
    if rng.random() < p_variant:
        segments.append((3, item.variant.split(), False))
    if rng.random() < p_sub:
        segments.append((2, leaf.path[1].split(), False))
    if rng.random() < 0.08:
        segments.append((1, [QUERY_FILLERS[int(rng.integers(len(QUERY_FILLERS)))]], True))
    while sum(len(words) for _, words, _ in segments) > 4:
        segments.remove(min(segments[1:], key=lambda segment: segment[0]))
    if sum(len(words) for _, words, _ in segments) < 2:
        pool = [a for a in leaf.adjectives if len(a.split()) == 1] or [leaf.path[1].split()[0]]
        segments.append((6, [pool[int(rng.integers(len(pool)))]], True))
    # Words before the noun come in a random order, usually led by the brand; the rest follow it.
    before = [segment for segment in segments[1:] if segment[2]]
    after = [segment for segment in segments[1:] if not segment[2]]
    before = [before[int(i)] for i in rng.permutation(len(before))]
    if rng.random() < 0.7:
        before.sort(key=lambda segment: segment[0] != 5)  # stable: only moves the brand to the front
    words = [w for _, ws, _ in before for w in ws] + segments[0][1] + [w for _, ws, _ in after for w in ws]
    return " ".join(words).lower()


def _make_query_log(
    rng: np.random.Generator,
    config: SyntheticConfig,
    leaves: list[_Leaf],
    items: list[_Item],
    brands: list[str],
    sequences: list[list[int]],
    stamps: list[list[int]],
    ids: list[str],
) -> list[QueryLogEvent]:
    events: list[tuple[int, int, QueryLogEvent]] = []
    for u, (sequence, times) in enumerate(zip(sequences, stamps, strict=True)):
        user_id = f"U{u:05d}"
        # Per-user search habits: synonym use, brand, subcategory and size/colour mentions.
        style = np.array([rng.uniform(0.1, 0.6), rng.uniform(0.05, 0.45), rng.uniform(0.05, 0.3), rng.uniform(0.05, 0.35)])
        searched = rng.random(len(sequence)) < config.search_share
        for p in np.flatnonzero(searched).tolist():
            item = items[sequence[p]]
            text = _query_text(rng, item, leaves[item.leaf], brands[item.brand], style)
            delay = int(rng.integers(_QUERY_DELAY[0], _QUERY_DELAY[1] + 1))
            events.append((times[p] - delay, u, QueryLogEvent(text, ids[sequence[p]], user_id, times[p] - delay)))
    events.sort(key=lambda event: (event[0], event[1]))
    return [event for _, _, event in events]


def generate_marketplace(config: SyntheticConfig = SyntheticConfig()) -> RawData:
    """A deterministic synthetic marketplace: catalog, one sequence per user and a query log.

    Items are ordered by first appearance in the sequences and ids ``SYN000000`` follow that
    order; every catalog item is engaged with at least once (items no user reached are dropped).
    """
    config.validate()
    rng = np.random.default_rng(config.seed)
    leaves = _build_tree(config)
    items, brands = _make_items(rng, config, leaves)
    live = _link_leaves(leaves)
    sequences, stamps = _make_sequences(rng, config, leaves, items, live)
    _cover_catalog(rng, items, sequences)

    order: dict[int, int] = {}
    for sequence in sequences:
        for item in sequence:
            if item not in order:
                order[item] = len(order)
    ids = [""] * len(items)
    for item, row in order.items():
        ids[item] = f"SYN{row:06d}"

    catalog = []
    for item in order:  # insertion order = first appearance
        spec = items[item]
        leaf = leaves[spec.leaf]
        fields = {
            "brand": brands[spec.brand],
            "categories": [list(leaf.path)],
            "description": spec.description,
            "price": spec.price,
        }
        catalog.append(Item(ids[item], spec.title, fields))
    user_sequences = [
        UserSequence(f"U{u:05d}", tuple(ids[i] for i in sequence), tuple(int(t) for t in times))
        for u, (sequence, times) in enumerate(zip(sequences, stamps, strict=True))
    ]
    query_log = _make_query_log(rng, config, leaves, items, brands, sequences, stamps, ids)
    return RawData(catalog, user_sequences, {"loader": "synthetic", "config": dataclasses.asdict(config)}, query_log)


def load_synthetic(**options) -> RawData:
    """Loader entry point: ``options`` are SyntheticConfig fields (from a task's ``options``)."""
    known = {field.name for field in dataclasses.fields(SyntheticConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise UnisrError(f"synthetic loader: unknown option {unknown[0]!r} (known: {', '.join(sorted(known))})")
    return generate_marketplace(SyntheticConfig(**options))
