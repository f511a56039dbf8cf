//! Fixed-width little-endian reading and writing of account and instruction data: the codec every layout
//! and instruction is written in.

use super::Key;
use crate::error::QgError;

/// Reads fixed-width little-endian fields from account or instruction data.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// The next `n` bytes.
    #[inline(always)]
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], QgError> {
        let end = self.pos.checked_add(n).ok_or(QgError::Overflow)?;
        let bytes = self.buf.get(self.pos..end).ok_or(QgError::WrongAccountData)?;
        self.pos = end;
        Ok(bytes)
    }

    #[inline(always)]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], QgError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// A byte.
    #[inline(always)]
    pub fn u8(&mut self) -> Result<u8, QgError> {
        Ok(self.array::<1>()?[0])
    }
    /// A boolean byte (0 or 1).
    #[inline(always)]
    pub fn bool(&mut self) -> Result<bool, QgError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(QgError::WrongAccountData),
        }
    }
    /// A `u16`.
    #[inline(always)]
    pub fn u16(&mut self) -> Result<u16, QgError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    /// A `u32`.
    #[inline(always)]
    pub fn u32(&mut self) -> Result<u32, QgError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    /// A `u64`.
    #[inline(always)]
    pub fn u64(&mut self) -> Result<u64, QgError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    /// An `i64`.
    #[inline(always)]
    pub fn i64(&mut self) -> Result<i64, QgError> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    /// 32 bytes.
    #[inline(always)]
    pub fn key(&mut self) -> Result<Key, QgError> {
        self.array()
    }
    /// Whether every byte was read.
    pub fn is_done(&self) -> bool {
        self.pos == self.buf.len()
    }
}

/// Writes fixed-width little-endian fields into a buffer of known size.
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Append bytes.
    pub fn put(&mut self, bytes: &[u8]) -> Result<(), QgError> {
        let end = self.pos.checked_add(bytes.len()).ok_or(QgError::Overflow)?;
        self.buf
            .get_mut(self.pos..end)
            .ok_or(QgError::WrongAccountData)?
            .copy_from_slice(bytes);
        self.pos = end;
        Ok(())
    }
    /// A byte.
    pub fn u8(&mut self, v: u8) -> Result<(), QgError> {
        self.put(&[v])
    }
    /// A boolean byte.
    pub fn bool(&mut self, v: bool) -> Result<(), QgError> {
        self.put(&[u8::from(v)])
    }
    /// A `u16`.
    pub fn u16(&mut self, v: u16) -> Result<(), QgError> {
        self.put(&v.to_le_bytes())
    }
    /// A `u32`.
    pub fn u32(&mut self, v: u32) -> Result<(), QgError> {
        self.put(&v.to_le_bytes())
    }
    /// A `u64`.
    pub fn u64(&mut self, v: u64) -> Result<(), QgError> {
        self.put(&v.to_le_bytes())
    }
    /// An `i64`.
    pub fn i64(&mut self, v: i64) -> Result<(), QgError> {
        self.put(&v.to_le_bytes())
    }
    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.pos
    }
    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }
}
