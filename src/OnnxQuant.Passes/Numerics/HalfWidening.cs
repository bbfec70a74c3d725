using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace OnnxQuant.Numerics;

/// <summary>
/// fp16 -> fp32, bit for bit what <c>(float)Half</c> gives for every one of the 65536 inputs (tested exhaustively), in
/// integer vector operations: the exponent is rebased by adding a constant to the shifted bits, infinities and NaNs get
/// a second constant (NaNs also the quiet bit), subnormals are renormalised by one float subtraction. Decoding fp16 weights was the largest
/// single cost of the W8 rewrite (a quarter of its CPU samples through TensorPrimitives.ConvertToSingle, whose general
/// algorithm does more work per element than fp16 weights need); this is the same answer in fewer instructions.
/// </summary>
internal static class HalfWidening
{
    private const uint ExponentMask = 0x7C00, QuietBit = 0x400000, Rebase = 112u << 23, InfinityRebase = 224u << 23, SubnormalMagic = 113u << 23;

    public static void ToSingle(ReadOnlySpan<ushort> half, Span<float> result)
    {
        if (result.Length < half.Length)
            throw new ArgumentException($"{result.Length} floats cannot hold {half.Length} halves");
        int i = Vector512.IsHardwareAccelerated ? Widen512(half, result)
            : Vector256.IsHardwareAccelerated ? Widen256(half, result)
            : 0;
        for (; i < half.Length; i++)
            result[i] = (float)BitConverter.UInt16BitsToHalf(half[i]);
    }

    /// <summary>The 512-bit body: widens whole vectors of 32 halves and returns how many it did (tests call each body).</summary>
    internal static int Widen512(ReadOnlySpan<ushort> half, Span<float> result)
    {
        ref ushort source = ref MemoryMarshal.GetReference(half);
        ref uint destination = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(result));
        int i = 0;
        for (; i <= half.Length - Vector512<ushort>.Count; i += Vector512<ushort>.Count)
        {
            var (low, high) = Vector512.Widen(Vector512.LoadUnsafe(ref source, (nuint)i));
            Widen(low).StoreUnsafe(ref destination, (nuint)i);
            Widen(high).StoreUnsafe(ref destination, (nuint)(i + Vector512<uint>.Count));
        }
        return i;
    }

    /// <summary>The 256-bit body, for machines without AVX-512: 16 halves at a time.</summary>
    internal static int Widen256(ReadOnlySpan<ushort> half, Span<float> result)
    {
        ref ushort source = ref MemoryMarshal.GetReference(half);
        ref uint destination = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(result));
        int i = 0;
        for (; i <= half.Length - Vector256<ushort>.Count; i += Vector256<ushort>.Count)
        {
            var (low, high) = Vector256.Widen(Vector256.LoadUnsafe(ref source, (nuint)i));
            Widen(low).StoreUnsafe(ref destination, (nuint)i);
            Widen(high).StoreUnsafe(ref destination, (nuint)(i + Vector256<uint>.Count));
        }
        return i;
    }

    /// <summary>
    /// accumulator[j] = max(accumulator[j], half[j] &amp; 0x7FFF): the largest magnitude per position, kept as fp16 bits.
    /// Without the sign bit, halves order like their magnitudes (infinities and NaNs above every finite value), so
    /// column maxima need no decoding.
    /// </summary>
    public static void FoldMagnitudeBits(ReadOnlySpan<ushort> half, Span<ushort> accumulator)
    {
        if (accumulator.Length < half.Length)
            throw new ArgumentException($"{accumulator.Length} maxima for {half.Length} halves");
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i <= half.Length - Vector512<ushort>.Count; i += Vector512<ushort>.Count)
            {
                var magnitude = Vector512.Create(half[i..]) & Vector512.Create((ushort)0x7FFF);
                Vector512.Max(Vector512.Create(accumulator[i..]), magnitude).CopyTo(accumulator[i..]);
            }
        else if (Vector256.IsHardwareAccelerated)
            for (; i <= half.Length - Vector256<ushort>.Count; i += Vector256<ushort>.Count)
            {
                var magnitude = Vector256.Create(half[i..]) & Vector256.Create((ushort)0x7FFF);
                Vector256.Max(Vector256.Create(accumulator[i..]), magnitude).CopyTo(accumulator[i..]);
            }
        for (; i < half.Length; i++)
            accumulator[i] = Math.Max(accumulator[i], (ushort)(half[i] & 0x7FFF));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<uint> Widen(Vector512<uint> h)
    {
        var sign = (h & Vector512.Create(0x8000u)) << 16;
        var magnitude = h & Vector512.Create(0x7FFFu);
        var exponent = magnitude & Vector512.Create(ExponentMask);
        var shifted = magnitude << 13;
        var normal = shifted + Vector512.Create(Rebase);
        // Infinities keep a zero mantissa; NaNs come out quiet, as the runtime's conversion makes them.
        var special = (shifted + Vector512.Create(InfinityRebase)) | (Vector512.GreaterThan(magnitude, Vector512.Create(ExponentMask)) & Vector512.Create(QuietBit));
        var subnormal = (shifted + Vector512.Create(SubnormalMagic)).AsSingle() - Vector512.Create(SubnormalMagic).AsSingle();
        var bits = Vector512.ConditionalSelect(Vector512.Equals(exponent, Vector512.Create(ExponentMask)), special, normal);
        bits = Vector512.ConditionalSelect(Vector512.Equals(exponent, Vector512<uint>.Zero), subnormal.AsUInt32(), bits);
        return bits | sign;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<uint> Widen(Vector256<uint> h)
    {
        var sign = (h & Vector256.Create(0x8000u)) << 16;
        var magnitude = h & Vector256.Create(0x7FFFu);
        var exponent = magnitude & Vector256.Create(ExponentMask);
        var shifted = magnitude << 13;
        var normal = shifted + Vector256.Create(Rebase);
        // Infinities keep a zero mantissa; NaNs come out quiet, as the runtime's conversion makes them.
        var special = (shifted + Vector256.Create(InfinityRebase)) | (Vector256.GreaterThan(magnitude, Vector256.Create(ExponentMask)) & Vector256.Create(QuietBit));
        var subnormal = (shifted + Vector256.Create(SubnormalMagic)).AsSingle() - Vector256.Create(SubnormalMagic).AsSingle();
        var bits = Vector256.ConditionalSelect(Vector256.Equals(exponent, Vector256.Create(ExponentMask)), special, normal);
        bits = Vector256.ConditionalSelect(Vector256.Equals(exponent, Vector256<uint>.Zero), subnormal.AsUInt32(), bits);
        return bits | sign;
    }
}
