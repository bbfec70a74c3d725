namespace OnnxQuant.Calibrate.Evaluation;

/// <summary>What a model is, as far as measuring it goes.</summary>
public enum ModelKind
{
    /// <summary>Has a logits output [batch, sequence, vocab]: perplexity and top-1 agreement.</summary>
    CausalLm,
    /// <summary>No logits: the first [batch, sequence, hidden] output, mean-pooled over the attention mask, compared by cosine.</summary>
    Encoder,
}
