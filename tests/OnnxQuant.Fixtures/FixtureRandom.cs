namespace OnnxQuant.Fixtures;

/// <summary>
/// A small deterministic generator (SplitMix64 + Box-Muller). System.Random's seeded sequence is not promised to stay the
/// same across .NET versions; fixture weights must, so committed models and test expectations can be regenerated.
/// Each tensor gets its own stream derived from (seed, role), so adding an option or a tensor never shifts other weights.
/// </summary>
public sealed class FixtureRandom
{
    private ulong _state;
    private double? _spareNormal;

    public FixtureRandom(ulong seed) => _state = seed;

    /// <summary>The stream for one named tensor of the fixture with <paramref name="seed"/>.</summary>
    public static FixtureRandom For(int seed, string role)
    {
        // FNV-1a over the role, mixed with the seed: stable, unlike string.GetHashCode.
        ulong h = 14695981039346656037UL;
        foreach (char c in role)
        {
            h ^= c;
            h *= 1099511628211UL;
        }
        return new FixtureRandom(h ^ ((ulong)(uint)seed * 0x9E3779B97F4A7C15UL));
    }

    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, <paramref name="bound"/>).</summary>
    public int NextInt(int bound) => (int)(NextDouble() * bound);

    public double NextNormal()
    {
        if (_spareNormal is { } spare)
        {
            _spareNormal = null;
            return spare;
        }
        double u1 = 1.0 - NextDouble(), u2 = NextDouble();
        double r = Math.Sqrt(-2.0 * Math.Log(u1));
        _spareNormal = r * Math.Sin(2 * Math.PI * u2);
        return r * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary><paramref name="count"/> values from N(<paramref name="mean"/>, <paramref name="std"/>).</summary>
    public float[] Normal(int count, double std, double mean = 0)
    {
        var values = new float[count];
        for (int i = 0; i < values.Length; i++)
            values[i] = (float)(mean + std * NextNormal());
        return values;
    }

    /// <summary><paramref name="count"/> distinct integers from [0, <paramref name="bound"/>), sorted.</summary>
    public int[] DistinctSorted(int count, int bound)
    {
        var picked = new SortedSet<int>();
        while (picked.Count < count)
            picked.Add(NextInt(bound));
        return picked.ToArray();
    }
}
