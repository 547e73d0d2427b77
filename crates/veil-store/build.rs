//! `sqlx::migrate!` embeds the migration files when the crate compiles, but cargo does not know it reads them: a
//! migration added or edited alone would not rebuild the crate, and the binary would run the old list.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
