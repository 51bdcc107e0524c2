//! Prints a sample of the demo data and measures patient generation speed:
//! `cargo run --release -p carefront-synth --example throughput`.

use carefront_synth::{PatientGenerator, demo_clinic};
use std::time::Instant;

fn main() {
    let clinic = demo_clinic(1);
    println!(
        "{} ({} rooms)",
        clinic.organization.name,
        clinic.rooms.len()
    );
    for l in &clinic.locations {
        println!(
            "  {} [{}] {}, {} {} {}",
            l.name,
            l.timezone,
            l.address.line1,
            l.address.city,
            l.address.state,
            l.address.postal_code
        );
    }
    for (p, r) in clinic.practitioners.iter().zip(0..) {
        let roles: Vec<_> = clinic
            .practitioner_roles
            .iter()
            .filter(|x| x.practitioner == r)
            .map(|x| (x.location, x.specialty))
            .collect();
        println!(
            "  {} NPI {} {:?} {:?}",
            p.display_name(),
            p.npi.as_deref().unwrap_or(""),
            p.email,
            roles
        );
    }
    for s in &clinic.staff {
        println!("  {} / {} ({})", s.username, s.password, s.display_name);
    }

    let generator = PatientGenerator::new(1);
    for p in generator.iter(0..12) {
        println!("{p:?}");
    }
    let n = 1_000_000u64;
    let start = Instant::now();
    let mut bytes = 0usize;
    for p in generator.iter(0..n) {
        bytes += p.family.len();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{n} patients in {secs:.3}s: {:.0} patients/s ({bytes})",
        n as f64 / secs
    );
}
