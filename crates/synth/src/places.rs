//! Embedded US places: real cities with their state, ZIP ranges, area codes
//! and time zone, and plausible street names.
//!
//! Cities and ZIPs are real so that address validation, state pickers and
//! ZIP look-ups behave as in production; street addresses and phone numbers
//! are invented (phones use the 555-01XX lines that NANP reserves for
//! fiction), so no generated address or number reaches a real person.

use crate::rng::Draw;
use carefront_domain::directory::Address;
use std::fmt::Write;

pub(crate) struct City {
    pub name: &'static str,
    /// USPS state code.
    pub state: &'static str,
    /// First ZIP of a range that belongs to the city.
    pub zip_first: u32,
    /// How many consecutive ZIPs from `zip_first` are drawn.
    pub zip_count: u32,
    pub area_codes: &'static [u16],
    /// IANA time zone.
    pub timezone: &'static str,
    /// Relative share of patients, roughly the metro population in 100k.
    pub weight: u32,
}

const fn city(
    name: &'static str,
    state: &'static str,
    zip_first: u32,
    zip_last: u32,
    area_codes: &'static [u16],
    timezone: &'static str,
    weight: u32,
) -> City {
    City {
        name,
        state,
        zip_first,
        zip_count: zip_last - zip_first + 1,
        area_codes,
        timezone,
        weight,
    }
}

const NY: &str = "America/New_York";
const CHI: &str = "America/Chicago";
const DEN: &str = "America/Denver";
const LA: &str = "America/Los_Angeles";

pub(crate) const CITIES: &[City] = &[
    city("New York", "NY", 10001, 10040, &[212, 646, 917], NY, 80),
    city("Brooklyn", "NY", 11201, 11239, &[718, 347, 929], NY, 26),
    city("Bronx", "NY", 10451, 10475, &[718, 347], NY, 14),
    city("Flushing", "NY", 11354, 11358, &[718, 929], NY, 6),
    city("Boston", "MA", 2108, 2136, &[617, 857], NY, 24),
    city("Cambridge", "MA", 2138, 2142, &[617, 857], NY, 5),
    city("Worcester", "MA", 1601, 1610, &[508, 774], NY, 5),
    city("Providence", "RI", 2903, 2909, &[401], NY, 8),
    city("Hartford", "CT", 6103, 6120, &[860, 959], NY, 6),
    city("New Haven", "CT", 6510, 6519, &[203, 475], NY, 5),
    city("Newark", "NJ", 7102, 7114, &[973, 862], NY, 10),
    city("Jersey City", "NJ", 7302, 7311, &[201, 551], NY, 7),
    city("Philadelphia", "PA", 19102, 19154, &[215, 267, 445], NY, 30),
    city("Pittsburgh", "PA", 15201, 15235, &[412, 878], NY, 12),
    city("Baltimore", "MD", 21201, 21231, &[410, 443], NY, 14),
    city("Washington", "DC", 20001, 20037, &[202], NY, 20),
    city("Arlington", "VA", 22201, 22209, &[703, 571], NY, 6),
    city("Richmond", "VA", 23219, 23235, &[804], NY, 7),
    city("Raleigh", "NC", 27601, 27617, &[919, 984], NY, 8),
    city("Charlotte", "NC", 28202, 28227, &[704, 980], NY, 13),
    city("Atlanta", "GA", 30303, 30350, &[404, 470, 678], NY, 30),
    city("Miami", "FL", 33125, 33186, &[305, 786], NY, 30),
    city("Orlando", "FL", 32801, 32839, &[407, 321], NY, 13),
    city("Tampa", "FL", 33602, 33629, &[813], NY, 16),
    city("Jacksonville", "FL", 32202, 32258, &[904], NY, 8),
    city("Columbus", "OH", 43201, 43235, &[614, 380], NY, 11),
    city("Cleveland", "OH", 44102, 44135, &[216], NY, 10),
    city("Detroit", "MI", 48201, 48235, &[313], NY, 20),
    city("Indianapolis", "IN", 46201, 46260, &[317, 463], NY, 11),
    city(
        "Louisville",
        "KY",
        40202,
        40245,
        &[502],
        "America/Kentucky/Louisville",
        7,
    ),
    city("Chicago", "IL", 60601, 60660, &[312, 773, 872], CHI, 50),
    city("Evanston", "IL", 60201, 60208, &[847, 224], CHI, 3),
    city("Milwaukee", "WI", 53202, 53233, &[414], CHI, 8),
    city("Minneapolis", "MN", 55401, 55419, &[612], CHI, 12),
    city("Saint Paul", "MN", 55101, 55119, &[651], CHI, 6),
    city("Kansas City", "MO", 64105, 64134, &[816], CHI, 11),
    city("St. Louis", "MO", 63101, 63139, &[314], CHI, 12),
    city("Nashville", "TN", 37203, 37221, &[615, 629], CHI, 10),
    city("Memphis", "TN", 38103, 38135, &[901], CHI, 7),
    city("New Orleans", "LA", 70112, 70131, &[504], CHI, 6),
    city("Houston", "TX", 77002, 77099, &[713, 281, 832], CHI, 45),
    city("Dallas", "TX", 75201, 75254, &[214, 469, 972], CHI, 40),
    city("San Antonio", "TX", 78201, 78260, &[210, 726], CHI, 15),
    city("Austin", "TX", 78701, 78759, &[512, 737], CHI, 14),
    city("Oklahoma City", "OK", 73102, 73142, &[405], CHI, 8),
    city("Omaha", "NE", 68102, 68164, &[402, 531], CHI, 5),
    city("Denver", "CO", 80202, 80239, &[303, 720], DEN, 18),
    city("Aurora", "CO", 80010, 80019, &[303, 720], DEN, 4),
    city("Salt Lake City", "UT", 84101, 84124, &[801, 385], DEN, 8),
    city("Albuquerque", "NM", 87102, 87123, &[505], DEN, 6),
    city(
        "Phoenix",
        "AZ",
        85003,
        85054,
        &[602, 480, 623],
        "America/Phoenix",
        30,
    ),
    city("Tucson", "AZ", 85701, 85750, &[520], "America/Phoenix", 7),
    city("Las Vegas", "NV", 89101, 89149, &[702, 725], LA, 15),
    city("Los Angeles", "CA", 90001, 90068, &[213, 323, 310], LA, 70),
    city("San Diego", "CA", 92101, 92130, &[619, 858], LA, 22),
    city("San Jose", "CA", 95110, 95139, &[408, 669], LA, 13),
    city("San Francisco", "CA", 94102, 94134, &[415, 628], LA, 15),
    city("Oakland", "CA", 94601, 94621, &[510, 341], LA, 8),
    city("Sacramento", "CA", 95814, 95838, &[916, 279], LA, 14),
    city("Fresno", "CA", 93701, 93728, &[559], LA, 7),
    city("Seattle", "WA", 98101, 98126, &[206], LA, 25),
    city("Spokane", "WA", 99201, 99224, &[509], LA, 4),
    city("Portland", "OR", 97201, 97236, &[503, 971], LA, 16),
    city(
        "Honolulu",
        "HI",
        96813,
        96826,
        &[808],
        "Pacific/Honolulu",
        6,
    ),
    city(
        "Anchorage",
        "AK",
        99501,
        99518,
        &[907],
        "America/Anchorage",
        3,
    ),
    city(
        "San Juan",
        "PR",
        901,
        926,
        &[787, 939],
        "America/Puerto_Rico",
        5,
    ),
];

const STREETS: &[&str] = &[
    "Main",
    "Oak",
    "Maple",
    "Cedar",
    "Pine",
    "Elm",
    "Washington",
    "Lincoln",
    "Park",
    "Lake",
    "Hill",
    "Sunset",
    "Highland",
    "Church",
    "Mill",
    "River",
    "Spring",
    "Chestnut",
    "Walnut",
    "Willow",
    "Franklin",
    "Jefferson",
    "Madison",
    "Jackson",
    "Adams",
    "Center",
    "Market",
    "Union",
    "Broad",
    "Water",
    "School",
    "Prospect",
    "Ridge",
    "Meadow",
    "Forest",
    "Orchard",
    "Valley",
    "Cherry",
    "Birch",
    "Spruce",
    "Magnolia",
    "Dogwood",
    "Cypress",
    "Sycamore",
    "Hickory",
    "Aspen",
    "Juniper",
    "Laurel",
    "Holly",
    "Poplar",
    "Garfield",
    "Grant",
    "Harrison",
    "Monroe",
    "Pleasant",
    "Fairview",
    "Glenwood",
    "Lakeview",
    "Riverside",
    "Woodland",
    "Greenwood",
    "Bayview",
    "Mountain View",
    "Sierra",
    "Mesa",
    "Canyon",
    "Palm",
    "Ocean",
    "Harbor",
    "Liberty",
    "Independence",
    "Martin Luther King Jr",
    "Cesar Chavez",
    "Evergreen",
    "Heritage",
    "Colonial",
    "Kingston",
    "Cambridge",
    "Oxford",
    "Windsor",
    "Hamilton",
    "Wilson",
    "Roosevelt",
    "Kennedy",
    "Front",
    "Bridge",
    "Railroad",
    "Station",
    "College",
    "University",
    "Academy",
    "Mulberry",
    "Locust",
    "Sassafras",
    "Bluebonnet",
    "Mockingbird",
    "Cardinal",
    "Heron",
    "Quail Run",
    "Deer Path",
    "Fox Hollow",
    "Briarwood",
    "Stonegate",
    "Whispering Pines",
    "Country Club",
    "Old Mill",
    "Ponce de Leon",
    "Alameda",
    "El Camino",
    "Vista del Sol",
    "2nd",
    "3rd",
    "4th",
    "5th",
    "6th",
    "7th",
    "8th",
    "9th",
    "10th",
    "12th",
    "14th",
    "18th",
    "21st",
    "23rd",
    "42nd",
];

const STREET_SUFFIXES: &[(&str, u32)] = &[
    ("St", 30),
    ("Ave", 25),
    ("Rd", 12),
    ("Dr", 10),
    ("Ln", 6),
    ("Blvd", 5),
    ("Ct", 4),
    ("Way", 4),
    ("Pl", 3),
    ("Ter", 2),
    ("Pkwy", 2),
    ("Cir", 2),
];

/// A postal address in `city` with an invented street address.
pub(crate) fn address_in(draw: &mut Draw, city: &City) -> Address {
    let mut line1 = String::with_capacity(32);
    let number = match draw.below(100) {
        0..15 => draw.between(1, 99),
        15..60 => draw.between(100, 999),
        60..95 => draw.between(1000, 9999),
        _ => draw.between(10000, 29999),
    };
    let _ = write!(line1, "{number} ");
    if draw.chance(100) {
        line1.push_str(draw.pick(&["N ", "S ", "E ", "W "]));
    }
    line1.push_str(draw.pick(STREETS));
    line1.push(' ');
    line1.push_str(draw.weighted(STREET_SUFFIXES));
    let line2 = draw.chance(180).then(|| match draw.below(4) {
        0 => format!("Apt {}", draw.between(1, 40)),
        1 => format!(
            "Apt {}{}",
            draw.between(1, 12),
            char::from(b'A' + draw.below(6) as u8)
        ),
        2 => format!("Unit {}", draw.between(100, 999)),
        _ => format!("#{}", draw.between(1, 300)),
    });
    let zip = city.zip_first + draw.below(u64::from(city.zip_count)) as u32;
    Address {
        line1,
        line2,
        city: city.name.to_string(),
        state: city.state.to_string(),
        postal_code: format!("{zip:05}"),
        country: "US".to_string(),
    }
}

/// A fictional E.164 number, `+1 <area> 555-01XX`. NANP sets 555-0100
/// through 555-0199 aside for fiction, so these never ring anyone.
pub(crate) fn fictional_phone(draw: &mut Draw, city: &City) -> String {
    let area = draw.pick(city.area_codes);
    format!("+1{area}55501{:02}", draw.below(100))
}

#[cfg(test)]
mod tests {
    use super::*;
    use carefront_domain::directory::{US_STATES, is_us_zip};

    #[test]
    fn cities_are_well_formed() {
        assert!(CITIES.len() >= 40);
        for c in CITIES {
            assert!(US_STATES.contains(&c.state), "{}", c.name);
            assert!(
                c.zip_count > 0 && c.zip_first + c.zip_count <= 100_000,
                "{}",
                c.name
            );
            assert!(is_us_zip(&format!("{:05}", c.zip_first)), "{}", c.name);
            assert!(!c.area_codes.is_empty(), "{}", c.name);
            for &a in c.area_codes {
                assert!((200..1000).contains(&a) && a % 100 != 11, "{}", c.name);
            }
            assert!(
                jiff::tz::TimeZone::get(c.timezone).is_ok(),
                "{}",
                c.timezone
            );
        }
    }
}
