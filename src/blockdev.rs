//! Block devices as this machine has them: MBR partition tables (what the
//! simulator writes on catalogue disks and reads back to attach
//! partitions, and what the chroot builder reads to wait for the partition
//! devices of a table a command just wrote), and device numbers.

/// Bytes per sector, as MBR counts them.
pub const SECTOR: u64 = 512;

/// A primary partition, in bytes from the start of the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// 1 to 4.
    pub number: u32,
    /// The partition type: 0x83 Linux, 0xEE the protective entry of a GPT
    /// disk, 0x05/0x0F/0x85 extended.
    pub kind: u8,
    pub offset: u64,
    pub len: u64,
}

/// The primary partitions of the table in `sector` (a disk's first 512
/// bytes); none when it holds no MBR signature. An extended partition's
/// logical ones are not read: nothing here makes them.
pub fn read(sector: &[u8; 512]) -> Vec<Partition> {
    if sector[510..512] != [0x55, 0xAA] {
        return Vec::new();
    }
    (0..4)
        .filter_map(|i| {
            let entry = &sector[446 + 16 * i..446 + 16 * (i + 1)];
            let field = |at: usize| {
                u64::from(u32::from_le_bytes(
                    entry[at..at + 4].try_into().expect("four bytes"),
                ))
            };
            let (kind, start, sectors) = (entry[4], field(8), field(12));
            (kind != 0 && sectors > 0).then_some(Partition {
                number: i as u32 + 1,
                kind,
                offset: start * SECTOR,
                len: sectors * SECTOR,
            })
        })
        .collect()
}

impl Partition {
    /// Whether the kernel shows it as a device of its own size: not the
    /// entry that protects a GPT disk, nor an extended partition (whose
    /// device is a stub).
    pub fn is_data(&self) -> bool {
        !matches!(self.kind, 0xEE | 0x05 | 0x0F | 0x85)
    }
}

/// The major and minor numbers of a device number (`st_rdev`).
pub fn numbers(rdev: u64) -> (u64, u64) {
    (
        (rdev >> 8) & 0xfff,
        (rdev & 0xff) | ((rdev >> 12) & 0xfff00),
    )
}

/// The first sector of a table with one bootable partition of type `kind`.
pub fn one_partition(offset: u64, len: u64, kind: u8) -> [u8; 512] {
    let mut sector = [0u8; 512];
    let entry = &mut sector[446..462];
    entry[0] = 0x80;
    entry[4] = kind;
    let start = u32::try_from(offset / SECTOR).unwrap_or(u32::MAX);
    let sectors = u32::try_from(len / SECTOR).unwrap_or(u32::MAX);
    entry[8..12].copy_from_slice(&start.to_le_bytes());
    entry[12..16].copy_from_slice(&sectors.to_le_bytes());
    sector[510] = 0x55;
    sector[511] = 0xAA;
    sector
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_round_trips_and_a_blank_sector_has_none() {
        assert_eq!(read(&[0; 512]), Vec::new());
        let sector = one_partition(1 << 20, 1 << 30, 0x83);
        assert_eq!(
            read(&sector),
            vec![Partition {
                number: 1,
                kind: 0x83,
                offset: 1 << 20,
                len: 1 << 30
            }]
        );
    }
}
