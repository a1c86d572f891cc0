"""Word pools for the generator. Plain ASCII (pillow's default font covers it), no
articles (they are dropped by answer normalization), no look-alike-only words."""

WORDS = (
    "anchor apple arrow badge bakery balloon bamboo banner basket beacon berry blanket "
    "bottle bridge bronze bubble bucket butter button cabin cactus camera candle canvas "
    "carpet castle cedar cherry chess cinema circus citrus clock cloud cobalt coffee comet "
    "copper coral cotton crater crystal dancer delta desert diamond dragon drum eagle "
    "echo ember engine falcon feather fern festival fiddle flame forest fossil fountain "
    "garden garlic giant ginger glacier globe granite guitar hammer harbor harvest hazel "
    "helmet honey horizon island ivory jacket jasmine jelly jungle kettle kitten ladder "
    "lagoon lantern lemon lily linen lizard lobster magnet mango maple marble meadow "
    "melon meteor mirror monkey mosaic motor mountain museum needle nickel noodle ocean "
    "olive onion orbit orchid otter oyster paddle palace panda paper parrot pebble pepper "
    "piano pilot planet pocket polar potato prism pumpkin puzzle quartz rabbit radar "
    "radish raven ribbon river rocket saddle salmon sandal saturn scarf shadow shell "
    "silver sketch socket spider spiral sponge spruce squash statue stone summit sunset "
    "tablet teapot temple thunder ticket tiger timber tomato torch tower tractor trumpet "
    "tulip tunnel turtle umbrella valley velvet violin voyage walnut wander whistle willow "
    "window winter wizard yellow zebra zephyr"
).split()

FIRST_NAMES = (
    "Ada Alan Amara Anika Boris Carla Chen Dario Elena Emeka Farah Felix Greta Hana Hugo "
    "Ines Ivan Jana Jonas Kai Kofi Lara Leon Lucia Malik Mara Mateo Mei Nadia Nils Omar "
    "Paula Priya Quinn Rafael Rosa Sami Sara Tariq Tess Uma Victor Wanda Yara Yusuf Zoe"
).split()

LAST_NAMES = (
    "Abbott Alvarez Becker Brooks Castillo Chandra Dubois Eriksen Fischer Garcia Haddad "
    "Ito Jensen Kowalski Laurent Lindqvist Mbeki Moreau Nakamura Novak Okafor Olsen Patel "
    "Petrov Quintero Rossi Santos Schmidt Silva Tanaka Torres Ueda Varga Walsh Weber Yilmaz Zhou"
).split()

CITIES = (
    "Aberdeen Accra Bergen Bilbao Bologna Bruges Cairns Calgary Cork Dakar Denver Dresden "
    "Durban Geneva Ghent Hanoi Havana Kyoto Leeds Lima Lisbon Lyon Malmo Medellin Nairobi "
    "Nantes Oaxaca Osaka Oslo Porto Quito Riga Salta Seville Tallinn Tampere Tartu Toledo "
    "Turin Utrecht Valencia Verona Vilnius Zagreb"
).split()

STREET_WORDS = "Maple Oak Cedar Harbor Mill River Station Church Park Market Orchard Bridge Willow Elm Hill".split()
STREET_KINDS = "Street Road Avenue Lane Way Drive".split()

SHOP_WORDS = (
    "Fresh Bakery|Green Valley|Blue Harbor|Golden Spoon|Silver Lake|Old Mill|North Star|"
    "Red Fox Cafe|Sunny Side|Corner Books|City Florist|Pine Hardware|Ocean Grill|Night Owl|"
    "Happy Paws|Iron Gym|Lucky Noodle|Swift Repairs|Maple Dental|River Pharmacy|Stone Oven|"
    "Urban Garden|Velvet Salon|Copper Kettle|Bright Optics|Quiet Library|Harbor Market|"
    "Tiny Toys|Grand Hotel|Rapid Taxi"
).split("|")

SIGN_KINDS = ("shop", "street", "label", "notice")

NOTICES = (
    "NO PARKING|KEEP LEFT|STAFF ONLY|EXIT|WET FLOOR|PUSH|PULL|OPEN|CLOSED|QUIET PLEASE|"
    "STOP|SLOW DOWN|NO ENTRY|FIRE EXIT|DELIVERIES|TICKETS|INFORMATION|LOST AND FOUND|"
    "WAY OUT|PLATFORM 4|GATE B|RECEPTION"
).split("|")

PRODUCTS = (
    "Apples|Bread|Butter|Cheese|Coffee|Eggs|Flour|Grapes|Honey|Jam|Juice|Lemons|Milk|"
    "Noodles|Oats|Olive oil|Pasta|Pears|Rice|Salt|Soap|Sugar|Tea|Tomatoes|Yogurt|"
    "Batteries|Candles|Notebook|Pencils|Sponges|Tape|Towels"
).split("|")

COMPANIES = (
    "Northwind Ltd|Acme Supplies|Bluebird Media|Cobalt Systems|Delta Freight|Evergreen Farms|"
    "Falcon Labs|Granite Works|Harbor Logistics|Iris Design|Juniper Health|Kestrel Air|"
    "Lumen Energy|Meridian Bank|Nimbus Cloud|Orchid Foods|Pioneer Tools|Quartz Studio"
).split("|")

DOC_TITLES = (
    "Invoice|Purchase Order|Delivery Note|Quarterly Report|Expense Claim|Booking Confirmation|"
    "Membership Form|Shipping Label|Service Request|Rental Agreement|Payment Receipt|"
    "Inventory Sheet|Class Schedule|Meeting Minutes|Price List|Order Summary"
).split("|")

CATEGORY_POOLS = {
    "fruit": "Apples Bananas Cherries Dates Figs Grapes Kiwis Lemons Mangoes Pears Plums".split(),
    "city": CITIES,
    "team": "Lions Tigers Bears Wolves Hawks Eagles Sharks Foxes Owls Bulls".split(),
    "product": "Alpha Beta Gamma Delta Omega Sigma Nova Apex Vega Orion".split(),
    "region": "North South East West Central Coastal Inland Highland".split(),
    "channel": "Online Retail Phone Partner Direct Kiosk".split(),
}

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
WEEKDAYS = "Mon Tue Wed Thu Fri Sat Sun".split()

# Code alphabet without look-alikes (0/O, 1/I/L, 5/S, 2/Z, 8/B).
CODE_ALPHABET = "ACDEFGHJKMNPQRTUVWXY34679"
