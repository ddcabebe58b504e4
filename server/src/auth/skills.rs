//! The product lines an expert takes remote calls for. The queue an online expert sees
//! is filtered by them and accepting a call outside them is refused; an expert with no
//! skills configured takes every line, and so do admins.

use crate::ids::UserId;
use crate::store::{Db, StoreError};

/// The expert's product-line codes; None when none are configured (every line).
pub async fn of(db: &Db, user: UserId) -> Result<Option<Vec<String>>, StoreError> {
    let rows: Vec<(String,)> = sqlx::query_as("SELECT product_line FROM expert_skills WHERE user_id = $1 ORDER BY product_line")
        .bind(user.to_string())
        .fetch_all(&db.pool)
        .await?;
    Ok((!rows.is_empty()).then(|| rows.into_iter().map(|(l,)| l).collect()))
}

/// Replaces the expert's product lines (an empty list: every line).
pub async fn set(db: &Db, user: UserId, lines: &[String]) -> Result<(), StoreError> {
    let mut tx = db.pool.begin().await?;
    sqlx::query("DELETE FROM expert_skills WHERE user_id = $1").bind(user.to_string()).execute(&mut *tx).await?;
    for l in lines {
        sqlx::query("INSERT INTO expert_skills (user_id, product_line) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(user.to_string())
            .bind(l)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Whether an expert with `skills` takes a call on `line` (unknown lines: everyone).
pub fn covers(skills: Option<&[String]>, line: Option<&str>) -> bool {
    match (skills, line) {
        (Some(s), Some(l)) => s.iter().any(|x| x == l),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_skills_or_no_line_means_everyone() {
        let s = vec!["SPN-CNC".to_owned()];
        assert!(super::covers(Some(&s), Some("SPN-CNC")));
        assert!(!super::covers(Some(&s), Some("DRL-18V")));
        assert!(super::covers(None, Some("DRL-18V")));
        assert!(super::covers(Some(&s), None));
    }
}
